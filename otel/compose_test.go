package pgsecureotel_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
)

// callerTracer is a test double standing in for otelpgx, which this module
// does not depend on: a pgx tracer that, as otelpgx does, starts a span in
// TraceConnectStart and TraceQueryStart, makes it the context's current
// span, and ends trace.SpanFromContext(ctx) in the matching End.
type callerTracer struct {
	tracer  trace.Tracer
	queries atomic.Int32
}

func (c *callerTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	ctx, _ = c.tracer.Start(ctx, "caller.query")
	return ctx
}

func (c *callerTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	trace.SpanFromContext(ctx).End()
}

func (c *callerTracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	ctx, _ = c.tracer.Start(ctx, "caller.connect")
	return ctx
}

func (c *callerTracer) TraceConnectEnd(ctx context.Context, _ pgx.TraceConnectEndData) {
	trace.SpanFromContext(ctx).End()
}

// TestComposesWithPoolTracer: a tracer the caller set in ConfigurePool, before
// or after Instrument, keeps tracing queries and connects, and pgsecure's
// connect span is a child of the caller's.
func TestComposesWithPoolTracer(t *testing.T) {
	pg, pki, _ := server(t)
	for _, instrumentFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("instrumentFirst=%t", instrumentFirst), func(t *testing.T) {
			tm := newTelemetry(t)
			ctx := ctxT(t)
			caller := &callerTracer{tracer: tm.tracerProvider.Tracer("caller")}
			setTracer := func(cfg *pgxpool.Config) { cfg.ConnConfig.Tracer = caller }
			b := pgsecure.NewBuilder(dsn("localhost", pg.Port)).RootCAFile(pki.CAFile)
			if instrumentFirst {
				b = tm.instrument(b).ConfigurePool(setTracer)
			} else {
				b = tm.instrument(b.ConfigurePool(setTracer))
			}
			pool, err := b.MinConns(2).Build(ctx)
			require.NoError(t, err)
			_, err = pool.Exec(ctx, "SELECT 1")
			require.NoError(t, err)
			for pool.Stat().IdleConns() < 2 { // MinConns connects in the background; Close would cancel it
				require.NoError(t, ctx.Err(), "the pool never opened its second connection")
				time.Sleep(10 * time.Millisecond)
			}
			pool.Close() // every connect has ended

			assert.Positive(t, caller.queries.Load(), "the caller's tracer still traces queries")
			assert.NotEmpty(t, tm.ended("caller.query"))
			callerConnects := map[trace.SpanID]bool{}
			for _, s := range tm.ended("caller.connect") {
				callerConnects[s.SpanContext().SpanID()] = true
			}
			ours := tm.ended("pgsecure.connect")
			require.NotEmpty(t, ours)
			assert.Len(t, callerConnects, len(ours), "one caller connect span per connect, each ended by the caller")
			for _, s := range ours {
				assert.True(t, callerConnects[s.Parent().SpanID()], "pgsecure.connect is a child of the caller's connect span")
				assert.Equal(t, "verified", spanAttrs(s)["pgsecure.outcome"].AsString())
			}
			assert.Len(t, tm.spans.Ended(), len(tm.spans.Started()), "every span started was ended")
		})
	}
}

// TestSecretMetrics counts credential fetches and failures by source.
func TestSecretMetrics(t *testing.T) {
	pg, pki, _ := server(t)
	tm := newTelemetry(t)
	ctx := ctxT(t)
	env := map[string]string{"PGUSER": appUser, "PGPASSWORD": appPassword}
	src := secrets.EnvFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	url := fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port)

	pool, err := tm.instrument(pgsecure.NewBuilder(url).RootCAFile(pki.CAFile).Credentials(src)).Build(ctx)
	require.NoError(t, err)
	pool.Close()
	empty := secrets.EnvFrom(func(string) (string, bool) { return "", false })
	_, err = tm.instrument(pgsecure.NewBuilder(url).RootCAFile(pki.CAFile).Credentials(empty)).Build(ctx)
	require.ErrorIs(t, err, secrets.ErrNotFound)

	m := tm.collect(t)
	assert.Equal(t, map[string]int64{"env": 1}, counts(t, m["pgsecure.secret.fetches"], "pgsecure.secret.source"))
	assert.Equal(t, map[string]int64{"env": 1}, counts(t, m["pgsecure.secret.failures"], "pgsecure.secret.source"))
	for _, name := range []string{"pgsecure.secret.fetches", "pgsecure.secret.failures"} {
		for _, dp := range m[name].(metricdata.Sum[int64]).DataPoints {
			for _, kv := range dp.Attributes.ToSlice() {
				assert.NotContains(t, kv.Value.Emit(), appPassword)
			}
		}
	}
}
