package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// warnCollector is an slog.Handler keeping the builder's warnings, to report
// them as findings. The warnings that repeat a refused connection or a
// failed login are left out: the refusal or the server's rejection itself is
// reported as the error.
type warnCollector struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnCollector) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnCollector) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message == "pgsecure: connection refused" || rec.Message == "pgsecure: login failed" {
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
