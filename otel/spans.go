package pgsecureotel

import (
	"context"
	"net"
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
)

// spans is a pgx ConnectTracer that gives each connect a span, and fills it
// from the events pgsecure reports during that connect: each event carries
// the connect's context, in which TraceConnectStart put the span. An event
// with no connect span in its context (a refusal before pgx dialled) gets
// a span of its own.
type spans struct {
	tracer trace.Tracer
	pool   []attribute.KeyValue
}

func newSpans(t trace.Tracer, pool []attribute.KeyValue) *spans {
	return &spans{tracer: t, pool: pool}
}

// spanKey holds the connect's *connectSpan in the connect's context. The
// span is not made the context's current span: a tracer composed before
// this one (such as otelpgx) ends its own connect span with
// trace.SpanFromContext.
type spanKey struct{}

// connectSpan is one connect's span and what its events said.
type connectSpan struct {
	span trace.Span

	mu       sync.Mutex
	refusal  *pgsecure.ConnectionRefused // the last one
	verified *pgsecure.ConnectionVerified
	login    *pgsecure.LoginFailed
}

// record adds one event to the span of the connect it belongs to.
func (s *spans) record(ctx context.Context, ev pgsecure.Event) {
	cs, _ := ctx.Value(spanKey{}).(*connectSpan)
	switch ev := ev.(type) {
	case pgsecure.ConnectionRefused:
		if cs == nil {
			s.orphan(ctx, ev)
			return
		}
		cs.span.AddEvent(eventRefused, trace.WithTimestamp(ev.Time), trace.WithAttributes(refusalAttrs(ev)...))
		cs.mu.Lock()
		cs.refusal = &ev
		cs.mu.Unlock()
	case pgsecure.ConnectionVerified:
		if cs != nil {
			cs.mu.Lock()
			cs.verified = &ev
			cs.mu.Unlock()
		}
	case pgsecure.LoginFailed:
		if cs != nil {
			cs.mu.Lock()
			cs.login = &ev
			cs.mu.Unlock()
		}
	}
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
	return context.WithValue(ctx, spanKey{}, &connectSpan{span: span})
}

// TraceConnectEnd fills the connect span from the events of its connect
// and ends it.
func (s *spans) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	cs, ok := ctx.Value(spanKey{}).(*connectSpan)
	if !ok {
		return
	}
	cs.mu.Lock()
	refusal, verified, login := cs.refusal, cs.verified, cs.login
	cs.mu.Unlock()
	var r verify.Report
	var hasReport bool
	if data.Err == nil && data.Conn != nil {
		var err error
		r, err = pgsecure.ConnReport(data.Conn)
		hasReport = err == nil
	}
	switch {
	case data.Err != nil:
		s.failed(cs.span, data.Err, refusal, login)
	case hasReport:
		s.succeeded(cs.span, r, verified)
	default:
		cs.span.SetAttributes(keyOutcome.String("unverified"))
	}
	cs.span.End()
}

func (s *spans) failed(span trace.Span, err error, refusal *pgsecure.ConnectionRefused, login *pgsecure.LoginFailed) {
	status := "connection failed"
	span.SetAttributes(keyOutcome.String("failed"))
	switch {
	case refusal != nil:
		span.SetAttributes(keyOutcome.String("refused"), keyRefusalKind.String(string(refusal.Refusal)), keyRefusalStage.String(string(refusal.Stage)))
		status = "refused: " + string(refusal.Refusal)
	case login != nil:
		span.SetAttributes(keyOutcome.String("login_failed"), keyStatusCode.String(login.SQLState))
		status = "login failed: SQLSTATE " + login.SQLState
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, status)
}

func refusalAttrs(ev pgsecure.ConnectionRefused) []attribute.KeyValue {
	return []attribute.KeyValue{keyServerAddr.String(ev.Host), keyRefusalKind.String(string(ev.Refusal)), keyRefusalStage.String(string(ev.Stage))}
}

func (s *spans) succeeded(span trace.Span, r verify.Report, ev *pgsecure.ConnectionVerified) {
	leaf := r.Leaf()
	attrs := []attribute.KeyValue{
		keyOutcome.String("verified"),
		keyServerAddr.String(r.ServerName),
		keyProof.String(string(r.Proof)),
		attribute.String("tls.protocol.name", "tls"),
		attribute.String("tls.protocol.version", strings.TrimPrefix(r.TLSVersion, "TLSv")),
		attribute.String("tls.cipher", r.CipherSuite),
		attribute.String("tls.server.subject", leaf.Subject),
		attribute.String("tls.server.issuer", leaf.Issuer),
		attribute.String("tls.server.not_after", leaf.NotAfter.UTC().Format(time.RFC3339)),
		keyAuthMethod.String(string(r.AuthMethod)),
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

// orphan gives a refusal that no connect span holds (made before pgx
// dialled) a span of its own, at the time it happened, under whatever span
// its context holds.
func (s *spans) orphan(ctx context.Context, ev pgsecure.ConnectionRefused) {
	attrs := append(append([]attribute.KeyValue{keyOutcome.String("refused")}, s.pool...), refusalAttrs(ev)...)
	_, span := s.tracer.Start(ctx, spanConnect, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(ev.Time), trace.WithAttributes(attrs...))
	if ev.Err != nil {
		span.RecordError(ev.Err, trace.WithTimestamp(ev.Time))
	}
	span.SetStatus(codes.Error, "refused: "+string(ev.Refusal))
	span.End(trace.WithTimestamp(ev.Time))
}
