package pgsecure_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/verify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseErrorsNeverQuoteSecrets: values written with libpq's escapes
// used to survive redaction in part when pgx's parse error was quoted. The
// error now names the key pgx refused and quotes nothing.
func TestParseErrorsNeverQuoteSecrets(t *testing.T) {
	isolateEnv(t)
	ca := testutil.NewPKI(t).CAFile
	for _, dsn := range []string{
		`host=localhost port=notaport user=app password='don\'t tell' sslpassword='my s\'ecret'`,
		`host=localhost connect_timeout=soon user=app password=don\'t\ tell`,
		`postgres://app:don%27t%20tell@localhost:notaport/db`,
		`postgres://app:don't tell@localhost:5432/db?connect_timeout=soon`,
	} {
		_, err := pgsecure.NewBuilder(dsn).RootCAFile(ca).Config(context.Background())
		require.Error(t, err, dsn)
		require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
		for _, part := range []string{"don", "tell", "my s", "%27t"} {
			assert.NotContains(t, err.Error(), part, "%s: %v", dsn, err)
		}
	}
	_, err := pgsecure.NewBuilder(`host=localhost port=notaport password='don\'t tell'`).RootCAFile(ca).Config(context.Background())
	assert.Contains(t, err.Error(), "port", "the error names the key pgx refused")
}

// TestHostaddrConnectsThereVerifiesHost: libpq's hostaddr is the address to
// connect to; the certificate is still checked against host. pgx does not
// implement it and used to send it to the server as a run-time parameter.
func TestHostaddrConnectsThereVerifiesHost(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	base := fmt.Sprintf("user=%s password=%s dbname=postgres port=%d", appUser, appPassword, pg.Port)
	pool, err := pgsecure.NewBuilder(base + " host=localhost hostaddr=127.0.0.1").RootCAFile(pki.CAFile).Build(ctx)
	require.NoError(t, err)
	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	r, _ := pgsecure.ConnReport(c.Conn())
	assert.Equal(t, "localhost", r.ServerName)
	assert.Equal(t, "127.0.0.1", c.Conn().PgConn().Conn().RemoteAddr().(*net.TCPAddr).IP.String())
	c.Release()
	pool.Close()

	_, err = pgsecure.NewBuilder(base + " host=db.example.com hostaddr=127.0.0.1").RootCAFile(pki.CAFile).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer, "the certificate is checked against host, not hostaddr")
	assert.Contains(t, err.Error(), "db.example.com")

	_, err = pgsecure.NewBuilder(base + " hostaddr=127.0.0.1").RootCAFile(pki.CAFile).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
	assert.Contains(t, err.Error(), "hostaddr is set without host")
}

// TestLibpqKeysPgxIgnoresNeverReachTheServer: keys libpq defines that pgx
// would forward as run-time parameters are implemented or refused.
func TestLibpqKeysPgxIgnoresNeverReachTheServer(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost") + "?keepalives=1&keepalives_idle=30&keepalives_interval=5&keepalives_count=3&fallback_application_name=fallback-app").
		RootCAFile(pki.CAFile).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	var app string
	require.NoError(t, pool.QueryRow(ctx, "SHOW application_name").Scan(&app))
	assert.Equal(t, "fallback-app", app)

	for key, value := range map[string]string{"tcp_user_timeout": "1000", "requirepeer": "postgres", "gssdelegation": "1", "oauth_client_secret": "shh-secret"} {
		_, err := pgsecure.NewBuilder(dsn(pg, "localhost") + "?" + key + "=" + value).RootCAFile(pki.CAFile).Config(ctx)
		require.ErrorIs(t, err, pgsecure.ErrInsecureConfig, key)
		assert.Contains(t, err.Error(), key)
		assert.NotContains(t, err.Error(), "shh-secret")
	}
}

// TestDefaultConnectTimeoutIsFinite: without connect_timeout a silent server
// fails the start after DefaultConnectTimeout, naming host and stage.
func TestDefaultConnectTimeoutIsFinite(t *testing.T) {
	isolateEnv(t)
	cfg, err := pgsecure.NewBuilder("host=db.example.com user=u").RootCAFile(testutil.NewPKI(t).CAFile).Config(context.Background())
	require.NoError(t, err)
	assert.Equal(t, pgsecure.DefaultConnectTimeout, cfg.ConnConfig.ConnectTimeout)
	cfg, err = pgsecure.NewBuilder("host=db.example.com user=u connect_timeout=0").RootCAFile(testutil.NewPKI(t).CAFile).Config(context.Background())
	require.NoError(t, err)
	assert.Zero(t, cfg.ConnConfig.ConnectTimeout, "connect_timeout=0 keeps libpq's unlimited wait")

	port := testutil.SilentPort(t) // a peer that accepts TCP and never answers
	start := time.Now()
	_, err = pgsecure.NewBuilder(fmt.Sprintf("host=localhost port=%d user=u connect_timeout=1", port)).RootCAFile(testutil.NewPKI(t).CAFile).Build(context.Background())
	require.Error(t, err)
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.True(t, strings.HasPrefix(err.Error(), fmt.Sprintf("pgsecure: localhost:%d (user u, database u): timed out after ", port)), "%v", err)
	assert.Contains(t, err.Error(), "TLS request")
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
}

// TestServerProofKinds: Build's startup connection asks the server; later
// connections authenticated with SCRAM-SHA-256-PLUS are proven by channel
// binding, without a query; QueryServerEveryConnection asks every time.
func TestServerProofKinds(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).MaxConns(2).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	first, err := pool.Acquire(ctx)
	require.NoError(t, err)
	r, err := pgsecure.ConnReport(first.Conn())
	require.NoError(t, err)
	assert.Equal(t, verify.ProofServerQuery, r.Proof, "Build's startup connection is described by the server")
	assert.True(t, r.Server.SSL)
	second, err := pool.Acquire(ctx) // first is busy: a new connection
	require.NoError(t, err)
	r, err = pgsecure.ConnReport(second.Conn())
	require.NoError(t, err)
	assert.Equal(t, verify.ProofChannelBinding, r.Proof)
	assert.True(t, r.ChannelBound())
	assert.Equal(t, "SCRAM-SHA-256-PLUS", r.SASLMechanism)
	assert.False(t, r.Server.SSL, "no server row: the proof needed no query")
	first.Release()
	second.Release()

	auditor, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).QueryServerEveryConnection().MaxConns(2).Build(ctx)
	require.NoError(t, err)
	defer auditor.Close()
	held, err := auditor.Acquire(ctx)
	require.NoError(t, err)
	defer held.Release()
	c, err := auditor.Acquire(ctx)
	require.NoError(t, err)
	defer c.Release()
	r, _ = pgsecure.ConnReport(c.Conn())
	assert.Equal(t, verify.ProofServerQuery, r.Proof)
	assert.True(t, r.Server.SSL)
	assert.Equal(t, c.Conn().PgConn().PID(), r.BackendPID)
}

// hiddenConn wraps a connection without exposing it (no NetConn, no
// ConnectionState), as some instrumentation wrappers do.
type hiddenConn struct{ inner net.Conn }

func (h *hiddenConn) Read(p []byte) (int, error)         { return h.inner.Read(p) }
func (h *hiddenConn) Write(p []byte) (int, error)        { return h.inner.Write(p) }
func (h *hiddenConn) Close() error                       { return h.inner.Close() }
func (h *hiddenConn) LocalAddr() net.Addr                { return h.inner.LocalAddr() }
func (h *hiddenConn) RemoteAddr() net.Addr               { return h.inner.RemoteAddr() }
func (h *hiddenConn) SetDeadline(t time.Time) error      { return h.inner.SetDeadline(t) }
func (h *hiddenConn) SetReadDeadline(t time.Time) error  { return h.inner.SetReadDeadline(t) }
func (h *hiddenConn) SetWriteDeadline(t time.Time) error { return h.inner.SetWriteDeadline(t) }

// TestHiddenTLSConnFallsBackToQuery: a caller's AfterNetConnect that hides
// the *tls.Conn prevents channel binding; the server is then asked (never
// nothing), and a TLS-terminating proxy is still refused.
func TestHiddenTLSConnFallsBackToQuery(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	hide := func(cfg *pgxpool.Config) {
		cfg.ConnConfig.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) {
			return &hiddenConn{inner: nc}, nil
		}
	}
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).ConfigurePool(hide).MaxConns(2).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	held, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer held.Release()
	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer c.Release()
	r, err := pgsecure.ConnReport(c.Conn())
	require.NoError(t, err)
	assert.Equal(t, verify.ProofServerQuery, r.Proof)
	assert.True(t, r.Server.SSL)
	assert.False(t, r.ChannelBound())

	peers := startHostilePeers(t)
	_, err = pgsecure.NewBuilder(peerDSN(peers.proxy, "localhost")).RootCAFile(peers.pki.CAFile).ConfigurePool(hide).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Contains(t, err.Error(), "ssl=false")
}

// TestHiddenConnDeadlineIsPgxTimeout: behind a caller's AfterNetConnect
// that hides pgsecure's connection (so the proof stage cannot find the
// attempt), a deadline on an established connection is still pgx's own
// timeout, and the statement that was sent is not safe to retry.
func TestHiddenConnDeadlineIsPgxTimeout(t *testing.T) {
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	hide := func(cfg *pgxpool.Config) {
		cfg.ConnConfig.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) {
			return &hiddenConn{inner: nc}, nil
		}
	}
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).ConfigurePool(hide).MaxConns(1).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, pool.Ping(ctx))
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = pool.Exec(short, "SELECT pg_sleep(2)")
	require.Error(t, err)
	assert.True(t, pgconn.Timeout(err), "pgx's timeout: %v", err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, pgconn.SafeToRetry(err), "the statement was sent: %v", err)
	assert.NotContains(t, err.Error(), "timed out connecting")
	require.NoError(t, pool.Ping(ctx), "the pool serves again")
}

// TestPgconnRetriesNotPreferredHost pins the pgconn behaviour the credential
// retry relies on: an attempt failing with an error that wraps a
// *pgconn.NotPreferredError makes pgconn try the remaining hosts and then
// that host once more, with the (updated) config. If a pgx upgrade changes
// this, the rotation retry must be redesigned.
func TestPgconnRetriesNotPreferredHost(t *testing.T) {
	t.Parallel()
	pg, _ := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=wrong dbname=postgres sslmode=disable", pg.Port, appUser))
	require.NoError(t, err)
	cc.Fallbacks = []*pgconn.FallbackConfig{{Host: "127.0.0.1", Port: closedPort()}}
	attempts := 0
	cc.AfterNetConnect = func(_ context.Context, cfg *pgconn.Config, nc net.Conn) (net.Conn, error) {
		attempts++
		if attempts == 1 {
			cfg.Password = appPassword // what a retry does: fresh credentials on this connect's config
			return nc, notPreferred{}
		}
		return nc, nil
	}
	pg.SetHBA(t, "host all all 127.0.0.1/32 scram-sha-256")
	conn, err := pgx.ConnectConfig(ctx, cc)
	require.NoError(t, err, "pgconn retried the not-preferred host with the updated password")
	defer conn.Close(ctx)
	assert.Equal(t, 2, attempts)

	// And a 28P01 stops the attempts at once (no retry without pgsecure).
	cc.AfterNetConnect = nil
	cc.Password = "wrong"
	_, err = pgx.ConnectConfig(ctx, cc)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "28P01", pgErr.Code)
}

type notPreferred struct{}

func (notPreferred) Error() string { return "not preferred" }
func (notPreferred) As(target any) bool {
	if p, ok := target.(**pgconn.NotPreferredError); ok {
		*p = &pgconn.NotPreferredError{}
		return true
	}
	return false
}

// isolateEnv clears the PG* variables and HOME, so the developer's
// environment cannot leak into a test.
func isolateEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			name, _, _ := strings.Cut(kv, "=")
			t.Setenv(name, "")
		}
	}
	t.Setenv("HOME", t.TempDir())
}
