package pgsecure_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServerCappedBelowMinimumRefused: a real PostgreSQL with
// ssl_max_protocol_version = TLSv1.2 and a client that requires TLS 1.3.
func TestServerCappedBelowMinimumRefused(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{Conf: map[string]string{"ssl_max_protocol_version": "'TLSv1.2'"}})
	pg.CreateRole(t, appUser, appPassword)
	ctx := ctxT(t)

	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Build(ctx)
	require.NoError(t, err, "TLS 1.2 is accepted by default")
	_, version := serverSaysSSL(t, ctx, pool)
	assert.Equal(t, "TLSv1.2", version)
	pool.Close()

	for _, b := range []*pgsecure.Builder{
		pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).MinTLSVersion(tls.VersionTLS13),
		pgsecure.NewBuilder(dsn(pg, "localhost") + "?ssl_min_protocol_version=TLSv1.3").RootCAFile(pki.CAFile),
	} {
		_, err = b.Build(ctx)
		require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
		assert.Contains(t, err.Error(), "protocol version")
		assert.NotContains(t, err.Error(), appPassword)
	}
}

// TestExpiryWarningOncePerPool: a server certificate expiring in 5 days
// produces one warning and one event, however many connections are made.
func TestExpiryWarningOncePerPool(t *testing.T) {
	t.Parallel()
	o := testutil.LocalServerOptions()
	o.NotAfter = time.Now().Add(5 * 24 * time.Hour)
	pg, pki := server(t, o)
	ctx := ctxT(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	var expiring []pgsecure.CertificateExpiring
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).MaxConns(3).
		Logger(slog.New(slog.NewTextHandler(&logs, nil))).
		OnEvent(func(_ context.Context, e pgsecure.Event) {
			if e, ok := e.(pgsecure.CertificateExpiring); ok {
				mu.Lock()
				expiring = append(expiring, e)
				mu.Unlock()
			}
		}).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	for range 3 {
		pool.Reset()
		require.NoError(t, pool.Ping(ctx))
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, expiring, 1)
	assert.Contains(t, []int{4, 5}, expiring[0].DaysLeft)
	assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("certificate expires soon")))

	// A certificate far from expiry: no warning.
	pg2, pki2 := server(t, testutil.LocalServerOptions())
	logs.Reset()
	pool2, err := pgsecure.NewBuilder(dsn(pg2, "localhost")).RootCAFile(pki2.CAFile).Logger(slog.New(slog.NewTextHandler(&logs, nil))).Build(ctx)
	require.NoError(t, err)
	pool2.Close()
	assert.NotContains(t, logs.String(), "expires soon")
}

// TestEventsAndLogsCarryNoSecret: refused and verified connections are
// reported to the callback and at debug level, never with the password. A
// refusal Build returns is not logged as well (the caller has it); one on a
// later connection, which only the log and the callback see, is.
func TestEventsAndLogsCarryNoSecret(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	var logs bytes.Buffer
	var kinds []pgsecure.EventKind
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Logger(logger).
		OnEvent(func(_ context.Context, e pgsecure.Event) { kinds = append(kinds, e.Kind()) }).Build(ctx)
	require.NoError(t, err)
	pool.Close()
	other := testutil.NewPKI(t)
	_, err = pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(other.CAFile).Logger(logger).
		OnEvent(func(_ context.Context, e pgsecure.Event) { kinds = append(kinds, e.Kind()) }).Build(ctx)
	require.Error(t, err)
	assert.Contains(t, kinds, pgsecure.EventConnectionVerified)
	assert.Contains(t, kinds, pgsecure.EventConnectionRefused)
	assert.Contains(t, logs.String(), "connection verified")
	assert.NotContains(t, logs.String(), "connection refused", "Build returned the refusal: not said twice")

	pool, err = pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Logger(logger).MaxConns(2).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	held, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer held.Release()
	_, _, pair := other.Server(t, testutil.LocalServerOptions())
	pg.SetServerCert(t, pair.CertPEM, pair.KeyPEM)
	_, err = pool.Acquire(ctx)
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer)
	assert.Equal(t, 1, strings.Count(logs.String(), "connection refused"), "a later refusal is logged, once")
	assert.NotContains(t, logs.String(), appPassword)
}
