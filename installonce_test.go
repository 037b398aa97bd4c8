package pgsecure_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stageFrames counts, in the calling goroutine's stack, the frames of each
// pipeline stage (a function of package internal/connect whose name is
// given), so a test can see how many times a stage sits in one call chain.
func stageFrames(names ...string) map[string]int {
	pcs := make([]uintptr, 256)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	counts := map[string]int{}
	for {
		f, more := frames.Next()
		for _, n := range names {
			if strings.HasSuffix(f.Function, "internal/connect."+n) {
				counts[n]++
			}
		}
		if !more {
			return counts
		}
	}
}

// TestPipelineInstalledOnce: a caller's hooks (set with ConfigurePool) run
// inside exactly one instance of each pgsecure stage, on Build's first
// connection and on a later one. Installing the stages at Config time and
// again per connection put two of each in every call chain.
func TestPipelineInstalledOnce(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	var mu sync.Mutex
	seen := map[string][]int{}
	record := func(hook, stage string) {
		n := stageFrames(stage)[stage]
		mu.Lock()
		seen[hook] = append(seen[hook], n)
		mu.Unlock()
	}
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).ConfigurePool(func(cfg *pgxpool.Config) {
		d := &net.Dialer{}
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			record("DialFunc", "(*dialStage).dial")
			return d.DialContext(ctx, network, addr)
		}
		cfg.ConnConfig.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) {
			record("AfterNetConnect", "(*localStage).afterNetConnect")
			return nc, nil
		}
		cfg.ConnConfig.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
			record("BuildFrontend", "(*frontendStage).buildFrontend")
			return pgproto3.NewFrontend(r, w)
		}
		cfg.ConnConfig.ValidateConnect = func(context.Context, *pgconn.PgConn) error {
			record("ValidateConnect", "(*proofStage).validate")
			return nil
		}
	}).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	c2, err := pool.Acquire(ctx) // a second, later connection
	require.NoError(t, err)
	c2.Release()
	c.Release()
	mu.Lock()
	defer mu.Unlock()
	for _, hook := range []string{"DialFunc", "AfterNetConnect", "BuildFrontend", "ValidateConnect"} {
		require.Len(t, seen[hook], 2, "%s ran once per connection", hook)
		for i, n := range seen[hook] {
			assert.Equal(t, 1, n, "connection %d: the caller's %s ran inside %d pgsecure stages of its kind", i+1, hook, n)
		}
	}
}

// TestConfigWithoutBeforeConnectFailsClosed: pgsecure installs its
// pipeline on each connection in the pool's BeforeConnect. A caller of
// Config who replaces that hook (alone, or with the hooks after it) gets a
// refusal naming the cause before anything but the TLS request reaches the
// server, not a connection without pgsecure's checks.
func TestConfigWithoutBeforeConnectFailsClosed(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	plain := &net.Dialer{}
	replace := []struct {
		name  string
		apply func(cc *pgx.ConnConfig)
	}{
		{"DialFunc", func(cc *pgx.ConnConfig) { cc.DialFunc = plain.DialContext }},
		{"AfterNetConnect", func(cc *pgx.ConnConfig) {
			cc.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) { return nc, nil }
		}},
		{"BuildFrontend", func(cc *pgx.ConnConfig) {
			cc.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend { return pgproto3.NewFrontend(r, w) }
		}},
	}
	for n := 0; n <= len(replace); n++ {
		names := []string{"BeforeConnect"}
		for _, r := range replace[:n] {
			names = append(names, r.name)
		}
		t.Run(strings.Join(names, "+"), func(t *testing.T) {
			cfg, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Config(ctx)
			require.NoError(t, err)
			cfg.BeforeConnect = func(context.Context, *pgx.ConnConfig) error { return nil }
			for _, r := range replace[:n] {
				r.apply(cfg.ConnConfig)
			}
			var sent bytes.Buffer
			dial := cfg.ConnConfig.DialFunc
			cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &recordingConn{Conn: nc, sent: &sent}, nil
			}
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			require.NoError(t, err)
			defer pool.Close()
			err = pool.Ping(ctx)
			require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
			assert.Contains(t, err.Error(), "BeforeConnect")
			assert.Contains(t, err.Error(), "ConfigurePool", "the error says how to customise instead")
			assert.NotContains(t, sent.String(), "user\x00", "a startup message was sent")
			assert.NotContains(t, sent.String(), appPassword)
		})
	}
}

// recordingConn keeps a copy of what the client writes to the TCP
// connection (TLS records after the TLS request).
type recordingConn struct {
	net.Conn
	mu   sync.Mutex
	sent *bytes.Buffer
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.sent.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// TestHooksReplacedAfterPgsecureRefused: a hook replaced on the
// connection's copy after pgsecure's BeforeConnect installed its stages
// (by a caller's BeforeConnect wrapped around pgsecure's) takes that stage
// out of the chain; the connection is refused before the startup message,
// with an error that names the hook and says to use ConfigurePool.
func TestHooksReplacedAfterPgsecureRefused(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	plain := &net.Dialer{}
	for _, row := range []struct {
		hook  string
		apply func(cc *pgx.ConnConfig)
		want  error
	}{
		{"DialFunc", func(cc *pgx.ConnConfig) { cc.DialFunc = plain.DialContext }, pgsecure.ErrInsecureConfig},
		{"AfterNetConnect", func(cc *pgx.ConnConfig) {
			cc.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) { return nc, nil }
		}, pgsecure.ErrInsecureConfig},
		{"BuildFrontend", func(cc *pgx.ConnConfig) {
			cc.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend { return pgproto3.NewFrontend(r, w) }
		}, pgsecure.ErrInsecureConfig},
	} {
		t.Run(row.hook, func(t *testing.T) {
			cfg, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Config(ctx)
			require.NoError(t, err)
			var sent bytes.Buffer
			dial := cfg.ConnConfig.DialFunc // recording under pgsecure's dial stage
			cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &recordingConn{Conn: nc, sent: &sent}, nil
			}
			afterPgsecure(cfg, row.apply)
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			require.NoError(t, err)
			defer pool.Close()
			err = pool.Ping(ctx)
			require.ErrorIs(t, err, row.want)
			assert.Contains(t, err.Error(), row.hook)
			assert.Contains(t, err.Error(), "ConfigurePool")
			assert.NotContains(t, sent.String(), "user\x00", "a startup message was sent")
		})
	}
}

// TestPoolAfterConnectRefusesUnverified: with the pool's BeforeConnect and
// every hook pgsecure wraps replaced (which removes the pipeline, as
// Config's doc says), the pool's AfterConnect, kept, still refuses to hand
// out a connection that carries no verification report.
func TestPoolAfterConnectRefusesUnverified(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	cfg, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Config(ctx)
	require.NoError(t, err)
	cfg.BeforeConnect = func(context.Context, *pgx.ConnConfig) error { return nil }
	cfg.ConnConfig.DialFunc = (&net.Dialer{}).DialContext
	cfg.ConnConfig.AfterNetConnect = nil
	cfg.ConnConfig.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend { return pgproto3.NewFrontend(r, w) }
	cfg.ConnConfig.ValidateConnect = nil
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	err = pool.Ping(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
	assert.Contains(t, err.Error(), "ConfigurePool")
}
