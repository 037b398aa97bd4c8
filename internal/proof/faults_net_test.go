package proof

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxied starts a server and a fault proxy in front of it.
func proxied(t *testing.T) (*testutil.PKI, *faultProxy) {
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	return pki, newFaultProxy(t, pg.Addr())
}

// TestFaultConnectTimeout: a network path that swallows the connection
// makes Build fail with a timeout once connect_timeout passes, not hang,
// and the error says it is a timeout rather than a security refusal.
func TestFaultConnectTimeout(t *testing.T) {
	t.Parallel()
	pki, proxy := proxied(t)
	proxy.SetBlackhole(true)
	_, err := pgsecure.NewBuilder(dsn("localhost", proxy.Port, "connect_timeout=1")).RootCAFile(pki.CAFile).Logger(quiet).
		Build(ctxT(t, 30*time.Second))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "timeout")
	assert.NotErrorIs(t, err, pgsecure.ErrUntrustedServer)
	assert.NotErrorIs(t, err, pgsecure.ErrInsecureConfig)
	assert.NotContains(t, err.Error(), appPassword)
	assert.Positive(t, proxy.Conns(), "the proxy was reached")
	t.Logf("error: %v", err)
}

// TestFaultLatency: a slow link still yields verified connections; a link
// slower than connect_timeout fails with a timeout.
func TestFaultLatency(t *testing.T) {
	t.Parallel()
	pki, proxy := proxied(t)
	proxy.SetLatency(30 * time.Millisecond)
	ctx := ctxT(t, time.Minute)
	pool, err := pgsecure.NewBuilder(dsn("localhost", proxy.Port, "connect_timeout=20")).RootCAFile(pki.CAFile).Logger(quiet).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	r, err := pgsecure.ConnReport(c.Conn())
	c.Release()
	require.NoError(t, err)
	assert.True(t, r.Server.SSL)

	proxy.SetLatency(1500 * time.Millisecond)
	_, err = pgsecure.NewBuilder(dsn("localhost", proxy.Port, "connect_timeout=1")).RootCAFile(pki.CAFile).Logger(quiet).Build(ctx)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, strings.Contains(err.Error(), "timeout"), err.Error())
}

// TestFaultConnectionsCut cuts every connection between pool and server.
// The pool recovers on new connections, each verified again.
func TestFaultConnectionsCut(t *testing.T) {
	t.Parallel()
	pki, proxy := proxied(t)
	ctx := ctxT(t, time.Minute)
	v := newVerifications()
	pool, err := pgsecure.NewBuilder(dsn("localhost", proxy.Port, "")).RootCAFile(pki.CAFile).Logger(quiet).
		MaxConns(2).AfterConnect(v.hook).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	before := v.count()

	proxy.Cut()
	_, err = tx.Exec(ctx, "SELECT 1")
	require.Error(t, err, "the cut connection fails")
	_ = tx.Rollback(ctx)
	assert.NotErrorIs(t, err, pgsecure.ErrNotEncrypted)

	fails := 0
	for range 10 {
		var pid uint32
		if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			fails++
			continue
		}
		assert.True(t, v.has(pid), "backend %d was not verified", pid)
	}
	assert.LessOrEqual(t, fails, 2, "at most one failure per cut connection")
	assert.Greater(t, v.count(), before, "new connections were opened and verified")
	assert.Zero(t, v.unverified)
}
