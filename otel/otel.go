package pgsecureotel

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/pgsecure/pgsecure"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of pgsecure's meter and tracer.
const ScopeName = "github.com/pgsecure/pgsecure/otel"

// Option configures Instrument.
type Option func(*options)

type options struct {
	meterProvider  metric.MeterProvider
	tracerProvider trace.TracerProvider
	poolName       string
}

// WithMeterProvider sets where metrics go (default: otel.GetMeterProvider()
// when Instrument is called).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meterProvider = mp }
}

// WithTracerProvider sets where spans go (default: otel.GetTracerProvider()
// when Instrument is called).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracerProvider = tp }
}

// WithPoolName names the pool in every metric and span
// (db.client.connection.pool.name), to tell the pools of one service apart.
func WithPoolName(name string) Option {
	return func(o *options) { o.poolName = name }
}

// Instrument makes the pools b builds report to OpenTelemetry (see the
// package documentation for the metrics and spans) and returns b. It adds
// an OnEvent callback and a BeforeConnect hook; it does not change what
// pgsecure checks or refuses. Call it once per Builder.
//
// A metric instrument that cannot be created is reported to otel.Handle
// and left out; the pool works all the same.
func Instrument(b *pgsecure.Builder, opts ...Option) *pgsecure.Builder {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.meterProvider == nil {
		o.meterProvider = otel.GetMeterProvider()
	}
	if o.tracerProvider == nil {
		o.tracerProvider = otel.GetTracerProvider()
	}
	var pool []attribute.KeyValue
	if o.poolName != "" {
		pool = []attribute.KeyValue{attribute.String("db.client.connection.pool.name", o.poolName)}
	}
	in := &instrumentation{
		metrics: newMetrics(o.meterProvider.Meter(ScopeName), pool),
		spans:   newSpans(o.tracerProvider.Tracer(ScopeName), pool),
	}
	return b.OnEvent(in.onEvent).BeforeConnect(in.beforeConnect)
}

type instrumentation struct {
	metrics *metrics
	spans   *spans
}

// onEvent runs synchronously on the connecting goroutine (OnEvent's
// contract): it only counts and records, and never blocks on I/O. ctx is
// the connect's: it holds the connect span.
func (in *instrumentation) onEvent(ctx context.Context, ev pgsecure.Event) {
	in.metrics.record(ctx, ev)
	in.spans.record(ctx, ev)
}

// beforeConnect puts the connect tracer on this connection's ConnConfig
// (the pool's per-connection copy), after whatever tracer the pool has, so
// that a tracer set in ConfigurePool, before or after Instrument, keeps
// working. Query tracing stays the pool tracer's alone.
func (in *instrumentation) beforeConnect(_ context.Context, cc *pgx.ConnConfig) error {
	if cc.Tracer == nil {
		cc.Tracer = in.spans
	} else {
		cc.Tracer = multitracer.New(cc.Tracer, in.spans)
	}
	return nil
}
