package pgsecureotel

import (
	"context"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/verify"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const (
	spanConnect     = "pgsecure.connect"
	spanServerCheck = "pgsecure.server_check"
	eventRefused    = "pgsecure.refused"

	keyOutcome      = attribute.Key("pgsecure.outcome")
	keyAuthMethod   = attribute.Key("pgsecure.auth_method")
	keyChannelBound = attribute.Key("pgsecure.channel_bound")
	keyPooler       = attribute.Key("pgsecure.pooler")
	keyHandshake    = attribute.Key("pgsecure.handshake.duration")

	// maxPending bounds the events remembered for connect spans that have
	// not ended yet.
	maxPending = 256
)

// spans is a pgx ConnectTracer that gives each connect a span, and fills it
// from the events pgsecure reports during that connect. Events carry no
// context, so a refusal is matched to its connect by the error itself (the
// one pgx returns wraps it) and a verified connection by its address and
// backend pid. A refusal no connect claims (made before pgx dialled, or
// dropped by pgx when the next host succeeded) gets a span of its own once
// no connect is in flight, or when it is pushed out of the pending list.
type spans struct {
	tracer trace.Tracer
	pool   []attribute.KeyValue

	mu       sync.Mutex
	inFlight int
	refusals []pgsecure.Event // pending, oldest first
	verified []pgsecure.Event // pending, oldest first
}

func newSpans(t trace.Tracer, pool []attribute.KeyValue) *spans {
	return &spans{tracer: t, pool: pool}
}

// spanKey holds the connect span in the connect's context. The span is not
// made the context's current span: a tracer composed before this one (such
// as otelpgx) ends its own connect span with trace.SpanFromContext.
type spanKey struct{}

// record keeps the events a connect span needs until the connect ends.
func (s *spans) record(ev pgsecure.Event) {
	var orphans []pgsecure.Event
	s.mu.Lock()
	switch {
	case ev.Kind == pgsecure.EventConnectionRefused && (s.inFlight == 0 || !matchable(ev.Err)):
		orphans = append(orphans, ev) // no connect could claim it
	case ev.Kind == pgsecure.EventConnectionRefused:
		s.refusals = append(s.refusals, ev)
		if len(s.refusals) > maxPending {
			orphans = append(orphans, s.refusals[0])
			s.refusals = s.refusals[1:]
		}
	case ev.Kind == pgsecure.EventConnectionVerified && ev.Report != nil && s.inFlight > 0:
		s.verified = append(s.verified, ev)
		if len(s.verified) > maxPending {
			s.verified = s.verified[1:]
		}
	}
	s.mu.Unlock()
	s.orphans(orphans)
}

// matchable reports whether err can be found again by identity in the
// error pgx returns: pgsecure's refusals are pointers.
func matchable(err error) bool {
	return err != nil && reflect.TypeOf(err).Kind() == reflect.Pointer
}

// TraceQueryStart and TraceQueryEnd do nothing: pgx requires every tracer to
// be a QueryTracer; queries are the pool tracer's to trace.
func (s *spans) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (s *spans) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceConnectStart starts the connect span.
func (s *spans) TraceConnectStart(ctx context.Context, data pgx.TraceConnectStartData) context.Context {
	attrs := append([]attribute.KeyValue{attribute.String("db.system.name", "postgresql")}, s.pool...)
	if cc := data.ConnConfig; cc != nil {
		attrs = append(attrs, keyServerAddr.String(cc.Host), attribute.Int("server.port", int(cc.Port)))
	}
	_, span := s.tracer.Start(ctx, spanConnect, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	s.mu.Lock()
	s.inFlight++
	s.mu.Unlock()
	return context.WithValue(ctx, spanKey{}, span)
}

// TraceConnectEnd fills the connect span from the events of its connect
// and ends it.
func (s *spans) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return
	}
	var claimed []pgsecure.Event
	var verified *pgsecure.Event
	var r verify.Report
	var hasReport bool
	if data.Err == nil && data.Conn != nil {
		r, hasReport = verify.ReportOf(data.Conn.PgConn())
	}
	s.mu.Lock()
	if data.Err != nil {
		claimed = s.claimRefusals(data.Err)
	} else if hasReport {
		verified = s.claimVerified(r)
	}
	s.inFlight--
	var orphans []pgsecure.Event
	if s.inFlight == 0 {
		orphans, s.refusals, s.verified = s.refusals, nil, nil
	}
	s.mu.Unlock()

	switch {
	case data.Err != nil:
		s.failed(span, data.Err, claimed)
	case hasReport:
		s.succeeded(span, r, verified)
	default:
		span.SetAttributes(keyOutcome.String("unverified"))
	}
	span.End()
	s.orphans(orphans)
}

// claimRefusals removes and returns the pending refusals whose error is in
// err's tree.
func (s *spans) claimRefusals(err error) []pgsecure.Event {
	var claimed []pgsecure.Event
	walkErrors(err, func(e error) {
		if !matchable(e) {
			return
		}
		for i, ev := range s.refusals {
			if ev.Err == e {
				claimed = append(claimed, ev)
				s.refusals = append(s.refusals[:i:i], s.refusals[i+1:]...)
				return
			}
		}
	})
	return claimed
}

// claimVerified removes and returns the pending verified event of the
// connection r describes.
func (s *spans) claimVerified(r verify.Report) *pgsecure.Event {
	for i, ev := range s.verified {
		if ev.Report.Addr == r.Addr && ev.Report.BackendPID == r.BackendPID {
			s.verified = append(s.verified[:i:i], s.verified[i+1:]...)
			return &ev
		}
	}
	return nil
}

// walkErrors calls fn for err and every error it wraps.
func walkErrors(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), fn)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, fn)
		}
	}
}

func (s *spans) failed(span trace.Span, err error, refusals []pgsecure.Event) {
	status := "connection failed"
	span.SetAttributes(keyOutcome.String("failed"))
	for _, ev := range refusals {
		span.AddEvent(eventRefused, trace.WithTimestamp(ev.Time), trace.WithAttributes(refusalAttrs(ev)...))
	}
	if n := len(refusals); n > 0 {
		last := refusals[n-1]
		span.SetAttributes(keyOutcome.String("refused"), keyRefusalKind.String(string(last.Refusal)), keyRefusalStage.String(last.Stage))
		status = "refused: " + string(last.Refusal)
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, status)
}

func refusalAttrs(ev pgsecure.Event) []attribute.KeyValue {
	return []attribute.KeyValue{keyServerAddr.String(ev.Host), keyRefusalKind.String(string(ev.Refusal)), keyRefusalStage.String(ev.Stage)}
}

func (s *spans) succeeded(span trace.Span, r verify.Report, ev *pgsecure.Event) {
	leaf := r.Leaf()
	attrs := []attribute.KeyValue{
		keyOutcome.String("verified"),
		keyServerAddr.String(r.ServerName),
		keyProof.String(r.Proof),
		attribute.String("tls.protocol.name", "tls"),
		attribute.String("tls.protocol.version", strings.TrimPrefix(r.TLSVersion, "TLSv")),
		attribute.String("tls.cipher", r.CipherSuite),
		attribute.String("tls.server.subject", leaf.Subject),
		attribute.String("tls.server.issuer", leaf.Issuer),
		attribute.String("tls.server.not_after", leaf.NotAfter.UTC().Format(time.RFC3339)),
		keyAuthMethod.String(r.AuthMethod),
		keyChannelBound.Bool(r.ChannelBound()),
	}
	if host, port, err := net.SplitHostPort(r.Addr); err == nil {
		attrs = append(attrs, attribute.String("network.peer.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("network.peer.port", p))
		}
	}
	if r.ClientCertificate != nil {
		attrs = append(attrs, attribute.String("tls.client.subject", r.ClientCertificate.Subject))
	}
	if r.Pooler != "" {
		attrs = append(attrs, keyPooler.String(r.Pooler))
	}
	if ev != nil && ev.Handshake > 0 {
		attrs = append(attrs, keyHandshake.Float64(ev.Handshake.Seconds()))
	}
	span.SetAttributes(attrs...)
	if ev != nil && ev.ServerCheck > 0 && !r.VerifiedAt.IsZero() {
		// The server check ended when the report was stamped.
		parent := trace.ContextWithSpan(context.Background(), span)
		_, check := s.tracer.Start(parent, spanServerCheck, trace.WithTimestamp(r.VerifiedAt.Add(-ev.ServerCheck)),
			trace.WithAttributes(keyServerAddr.String(r.ServerName)))
		check.End(trace.WithTimestamp(r.VerifiedAt))
	}
}

// orphans gives each refusal that no connect claimed a span of its own, at
// the time it happened.
func (s *spans) orphans(refusals []pgsecure.Event) {
	for _, ev := range refusals {
		attrs := append(append([]attribute.KeyValue{keyOutcome.String("refused")}, s.pool...), refusalAttrs(ev)...)
		_, span := s.tracer.Start(context.Background(), spanConnect, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithTimestamp(ev.Time), trace.WithAttributes(attrs...))
		if ev.Err != nil {
			span.RecordError(ev.Err, trace.WithTimestamp(ev.Time))
		}
		span.SetStatus(codes.Error, "refused: "+string(ev.Refusal))
		span.End(trace.WithTimestamp(ev.Time))
	}
}
