package pgsecure_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/verify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuilderChangesAfterBuildDoNotReachThePool: Build and Config take a
// snapshot of the Builder. An OnEvent callback, hooks and a logger added
// afterwards reach neither the built pool nor a pool made from the
// returned configuration; the callbacks registered before keep working.
func TestBuilderChangesAfterBuildDoNotReachThePool(t *testing.T) {
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	var before, late atomic.Int32
	b := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).
		OnEvent(func(context.Context, pgsecure.Event) { before.Add(1) })
	pool, err := b.Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	cfg, err := b.Config(ctx)
	require.NoError(t, err)
	fromConfig, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer fromConfig.Close()

	var lateLogs testutil.LogBuffer
	b.OnEvent(func(context.Context, pgsecure.Event) { late.Add(1) }).
		BeforeConnect(func(context.Context, *pgx.ConnConfig) error { late.Add(1); return errors.New("late BeforeConnect") }).
		AfterConnect(func(context.Context, *pgx.Conn) error { late.Add(1); return errors.New("late AfterConnect") }).
		ConfigurePool(func(*pgxpool.Config) { late.Add(1) }).
		Logger(slog.New(slog.NewTextHandler(&lateLogs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	n := before.Load()
	for _, p := range []*pgxpool.Pool{pool, fromConfig} {
		p.Reset()
		require.NoError(t, p.Ping(ctx), "a hook added after Build does not run")
	}
	assert.Greater(t, before.Load(), n, "the callback registered before Build sees the new connections")
	assert.Zero(t, late.Load(), "nothing added after Build or Config reaches their pools")
	assert.Empty(t, lateLogs.String(), "a logger set after Build is not the pool's")

	// The Builder itself has the additions: the next Build gets them.
	_, err = b.Build(ctx)
	require.ErrorContains(t, err, "late BeforeConnect")
}

// TestNilHooksAreErrorsAtBuild: a nil callback is reported by Build (and
// Config), like RootCAFile(""), naming the method; it never panics in a
// later connect.
func TestNilHooksAreErrorsAtBuild(t *testing.T) {
	pki := testutil.NewPKI(t)
	ctx := ctxT(t)
	for name, set := range map[string]func(*pgsecure.Builder){
		"OnEvent":             func(b *pgsecure.Builder) { b.OnEvent(nil) },
		"ConfigurePool":       func(b *pgsecure.Builder) { b.ConfigurePool(nil) },
		"BeforeConnect":       func(b *pgsecure.Builder) { b.BeforeConnect(nil) },
		"AfterConnect":        func(b *pgsecure.Builder) { b.AfterConnect(nil) },
		"ClientKeyPassphrase": func(b *pgsecure.Builder) { b.ClientKeyPassphrase(nil) },
	} {
		t.Run(name, func(t *testing.T) {
			// Port 1: nothing listens; Build must fail before dialling.
			b := pgsecure.NewBuilder("postgres://app@localhost:1/postgres").RootCAFile(pki.CAFile)
			set(b)
			for _, err := range []error{func() error { _, err := b.Build(ctx); return err }(), func() error { _, err := b.Config(ctx); return err }()} {
				require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
				var ce *pgsecure.ConfigError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, name, ce.Setting)
				assert.Contains(t, err.Error(), "nil function")
			}
		})
	}
}

// TestStartupEventIsTheStartupConnection: Build's own connection is
// reported as it is: the server was queried, so its ConnectionVerified
// event says "server query" with the time the query took, as ReportOf
// says for the same connection.
func TestStartupEventIsTheStartupConnection(t *testing.T) {
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	var mu sync.Mutex
	var verified []pgsecure.ConnectionVerified
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).MaxConns(1).
		OnEvent(func(_ context.Context, e pgsecure.Event) {
			if v, ok := e.(pgsecure.ConnectionVerified); ok {
				mu.Lock()
				verified = append(verified, v)
				mu.Unlock()
			}
		}).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	r, err := pgsecure.ReportOf(ctx, pool) // MaxConns(1): the startup connection
	require.NoError(t, err)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, verified, 1)
	ev := verified[0]
	assert.Equal(t, verify.ProofServerQuery, r.Proof)
	assert.Equal(t, r.Proof, ev.Report.Proof, "the event says what the report says")
	assert.Equal(t, r.BackendPID, ev.Report.BackendPID)
	assert.Equal(t, r.Server, ev.Report.Server, "the event carries the server's own view")
	assert.Positive(t, ev.ServerCheck, "the server query took time")
	assert.Positive(t, ev.Handshake)
}

// TestStartupEventsMatchReports: with MinConns, pgxpool opens connections
// of its own while Build runs; whichever of them Build checks, each
// connection's ConnectionVerified event says what its report says.
func TestStartupEventsMatchReports(t *testing.T) {
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	var mu sync.Mutex
	proofs := map[uint32]verify.Proof{} // backend pid -> the event's proof
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).MinConns(2).MaxConns(2).
		OnEvent(func(_ context.Context, e pgsecure.Event) {
			if v, ok := e.(pgsecure.ConnectionVerified); ok {
				mu.Lock()
				proofs[v.Report.BackendPID] = v.Report.Proof
				mu.Unlock()
			}
		}).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	var conns []*pgxpool.Conn
	for range 2 {
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range conns {
		r, err := pgsecure.ConnReport(c.Conn())
		require.NoError(t, err)
		assert.Equal(t, r.Proof, proofs[r.BackendPID], "the event of backend %d says what its report says", r.BackendPID)
		c.Release()
	}
}
