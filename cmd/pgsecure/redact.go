package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/pgsecure/pgsecure/secrets"
)

// scrubber collects the secrets check has seen so that nothing it prints
// contains one. pgsecure's own messages carry no secrets; this is a second
// line of defence for text that quotes other components.
type scrubber struct {
	mu      sync.Mutex
	secrets []string
}

func (s *scrubber) add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
}

func (s *scrubber) scrub(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.secrets {
		text = strings.ReplaceAll(text, v, secrets.Redacted)
	}
	return text
}

// recordingSource passes credentials through and remembers their password
// for the scrubber.
type recordingSource struct {
	secrets.Source
	sc *scrubber
}

func (r *recordingSource) Credentials(ctx context.Context) (secrets.Credentials, error) {
	c, err := r.Source.Credentials(ctx)
	if err == nil {
		r.sc.add(c.Password.Reveal())
	}
	return c, err
}

// Name keeps the wrapped source's name in messages.
func (r *recordingSource) Name() string { return secrets.NameOf(r.Source) }

// Invalidate forwards a rejection to the wrapped source.
func (r *recordingSource) Invalidate(rejected secrets.Credentials) {
	if inv, ok := r.Source.(secrets.Invalidator); ok {
		inv.Invalidate(rejected)
	}
}

// warnCollector is an slog.Handler keeping the builder's warnings, to report
// them as findings. The warning that repeats a refused connection is left
// out: the refusal itself is reported as the error.
type warnCollector struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnCollector) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnCollector) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message == "pgsecure: connection refused" {
		return nil
	}
	var b strings.Builder
	b.WriteString(strings.TrimPrefix(rec.Message, "pgsecure: "))
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	w.mu.Lock()
	w.msgs = append(w.msgs, b.String())
	w.mu.Unlock()
	return nil
}

func (w *warnCollector) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCollector) WithGroup(string) slog.Handler      { return w }

func (w *warnCollector) messages() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}
