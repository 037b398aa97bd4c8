package pgsecure_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	appUser     = "app"
	appPassword = "Corr3ct-Horse-Battery"
)

var app = testutil.Role{User: appUser, Password: appPassword}

// server starts a real PostgreSQL 15 with TLS, a certificate issued by a
// fresh test CA for the given options, and a scram-sha-256 role.
func server(t *testing.T, o certgen.Options) (*testutil.Postgres, *testutil.PKI) {
	t.Helper()
	pki := testutil.NewPKI(t)
	pg, _ := pki.StartServerWithRole(t, o, app)
	return pg, pki
}

func dsn(pg *testutil.Postgres, host string) string { return app.DSN(host, pg.Port, "") }

func ctxT(t *testing.T) context.Context { return testutil.Context(t, 60*time.Second) }

func serverSaysSSL(t *testing.T, ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (bool, string) {
	t.Helper()
	var ssl bool
	var version string
	require.NoError(t, q.QueryRow(ctx, "SELECT ssl, coalesce(version, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl, &version))
	return ssl, version
}

func TestBuildVerifiesAgainstRealPostgres(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	for _, host := range []string{"localhost", "127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			pool, err := pgsecure.NewBuilder(dsn(pg, host)).RootCAFile(pki.CAFile).Build(ctx)
			require.NoError(t, err)
			defer pool.Close()
			ssl, version := serverSaysSSL(t, ctx, pool)
			assert.True(t, ssl, "pg_stat_ssl.ssl")
			assert.Contains(t, []string{"TLSv1.2", "TLSv1.3"}, version)

			c, err := pool.Acquire(ctx)
			require.NoError(t, err)
			defer c.Release()
			r, err := pgsecure.ConnReport(c.Conn())
			require.NoError(t, err, "every pooled connection carries its verification report")
			assert.True(t, r.Server.SSL)
			assert.Equal(t, version, r.TLSVersion)
			assert.Equal(t, r.TLSVersion, r.Server.Version)
			assert.Contains(t, r.Leaf().DNSNames, "localhost")
			assert.NotEmpty(t, r.Leaf().SPKIPin)
			assert.Greater(t, r.Leaf().DaysUntilExpiry(time.Now()), 300)
			assert.NotContains(t, r.String(), appPassword)
		})
	}
}

// TestSeedStyleCertificateAccepted uses the certificate the seed guide's
// openssl command makes: self-signed, CN = host, no subjectAltName. libpq
// accepts it; raw pgx with sslmode=verify-full refuses it; pgsecure follows
// libpq.
func TestSeedStyleCertificateAccepted(t *testing.T) {
	t.Parallel()
	pair, err := certgen.SelfSigned(certgen.Options{CommonName: "localhost", KeyType: certgen.RSA2048})
	require.NoError(t, err)
	require.Empty(t, pair.Cert.DNSNames)
	require.Empty(t, pair.Cert.IPAddresses)
	pg := testutil.StartPostgres(t, testutil.PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: pair.KeyPEM})
	pg.CreateRole(t, appUser, appPassword)
	rootFile := testutil.WritePEM(t, t.TempDir(), "server.crt", pair.CertPEM)
	ctx := ctxT(t)

	raw, err := pgx.Connect(ctx, dsn(pg, "localhost")+"?sslmode=verify-full&sslrootcert="+rootFile)
	if err == nil {
		raw.Close(ctx)
	}
	require.Error(t, err, "raw pgx refuses the CN-only certificate")
	assert.Contains(t, err.Error(), "Common Name")

	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost") + "?sslrootcert=" + rootFile).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	ssl, _ := serverSaysSSL(t, ctx, pool)
	assert.True(t, ssl)

	// The same certificate does not name 127.0.0.1: refused, as libpq does.
	_, err = pgsecure.NewBuilder(dsn(pg, "127.0.0.1") + "?sslrootcert=" + rootFile).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer)
	assert.Contains(t, err.Error(), `"127.0.0.1"`)
	assert.Contains(t, err.Error(), `"localhost"`, "the error says what the certificate covers")
}

// TestCertificateRefusals connects to real servers whose certificates must
// be refused, and checks each error's sentinels, content and that it never
// carries the password.
func TestCertificateRefusals(t *testing.T) {
	t.Parallel()
	now := time.Now()
	other, err := certgen.NewCA("some other CA", certgen.ECDSAP256)
	require.NoError(t, err)
	cases := []struct {
		name    string
		opts    certgen.Options
		byOther bool
		host    string
		want    string
	}{
		{"wrong CA", testutil.LocalServerOptions(), true, "localhost", "does not lead to the pinned CA"},
		{"wrong host", certgen.Options{CommonName: "db.example.com", DNSNames: []string{"db.example.com"}}, false, "localhost", `covers "db.example.com", not "localhost"`},
		{"wrong IP", certgen.Options{IPs: []net.IP{net.ParseIP("10.9.8.7")}}, false, "127.0.0.1", `covers "10.9.8.7", not "127.0.0.1"`},
		{"expired", withValidity(testutil.LocalServerOptions(), now.Add(-72*time.Hour), now.Add(-24*time.Hour)), false, "localhost", "expired on"},
		{"not yet valid", withValidity(testutil.LocalServerOptions(), now.Add(24*time.Hour), now.Add(72*time.Hour)), false, "localhost", "not valid until"},
		{"CN-only wrong CN", certgen.Options{CommonName: "db.example.com"}, false, "localhost", `covers "db.example.com"`},
	}
	pg, pki := server(t, testutil.LocalServerOptions()) // one server; each row gives it the row's certificate
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var pair *certgen.Pair
			if c.byOther {
				pair, err = other.Issue(c.opts)
				require.NoError(t, err)
			} else {
				_, _, pair = pki.Server(t, c.opts)
			}
			pg.SetServerCert(t, pair.CertPEM, pair.KeyPEM)
			pool, err := pgsecure.NewBuilder(dsn(pg, c.host)).RootCAFile(pki.CAFile).Build(ctxT(t))
			require.Error(t, err)
			assert.Nil(t, pool)
			assert.ErrorIs(t, err, pgsecure.ErrUntrustedServer)
			assert.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
			var ce *pgsecure.CertificateError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, c.host, ce.Host)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), appPassword)
		})
	}
}

func withValidity(o certgen.Options, nb, na time.Time) certgen.Options {
	o.NotBefore, o.NotAfter = nb, na
	return o
}

// TestPlaintextServerRefused: a real PostgreSQL with ssl=off answers 'N' to
// the SSLRequest. pgsecure refuses before any credential is sent.
func TestPlaintextServerRefused(t *testing.T) {
	t.Parallel()
	pg := testutil.StartPostgres(t, testutil.PGOptions{SSLOff: true})
	pg.CreateRole(t, appUser, appPassword)
	pki := testutil.NewPKI(t)
	ctx := ctxT(t)

	// The server really does accept plaintext: raw pgx with the default
	// sslmode=prefer logs in without TLS.
	raw, err := pgx.Connect(ctx, dsn(pg, "127.0.0.1"))
	require.NoError(t, err)
	ssl, _ := serverSaysSSL(t, ctx, raw)
	assert.False(t, ssl)
	raw.Close(ctx)

	_, err = pgsecure.NewBuilder(dsn(pg, "127.0.0.1")).RootCAFile(pki.CAFile).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Contains(t, err.Error(), "declined TLS")
	assert.NotContains(t, err.Error(), appPassword)
}

// TestRefusalThroughAcquire checks that a connection opened after Build (by
// Acquire) is verified too: once the server's certificate is replaced by one
// from another CA, new connections fail with ErrUntrustedServer while the
// one already open keeps working.
func TestRefusalThroughAcquire(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).MaxConns(2).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	held, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer held.Release()

	other := testutil.NewPKI(t)
	_, _, pair := other.Server(t, testutil.LocalServerOptions())
	pg.SetServerCert(t, pair.CertPEM, pair.KeyPEM)

	_, err = pool.Acquire(ctx) // the held connection is busy: this opens a new one
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer)
	assert.NotContains(t, err.Error(), appPassword)
	var n int
	require.NoError(t, held.QueryRow(ctx, "SELECT 1").Scan(&n), "the existing connection is untouched")
	assert.Equal(t, 1, n)
}

// TestUserHooksChained checks that hooks given to the builder and hooks set
// on the returned Config run, after pgsecure's checks.
func TestUserHooksChained(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	var before, after, dialed, netHook, validated atomic.Int32
	b := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).
		BeforeConnect(func(_ context.Context, cc *pgx.ConnConfig) error {
			before.Add(1)
			cc.RuntimeParams["application_name"] = "hooked"
			return nil
		}).
		AfterConnect(func(_ context.Context, c *pgx.Conn) error {
			_, err := pgsecure.ConnReport(c)
			assert.NoError(t, err, "AfterConnect runs after verification")
			after.Add(1)
			return nil
		})
	cfg, err := b.Config(ctx)
	require.NoError(t, err)
	dialer := &net.Dialer{}
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
	cfg.ConnConfig.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) {
		st, isTLS := nc.(interface{ ConnectionState() tls.ConnectionState })
		require.True(t, isTLS, "the caller's AfterNetConnect sees the verified TLS connection")
		assert.True(t, st.ConnectionState().HandshakeComplete)
		netHook.Add(1)
		return nc, nil
	}
	cfg.ConnConfig.ValidateConnect = func(_ context.Context, pgConn *pgconn.PgConn) error {
		_, ok := connect.ReportOf(pgConn)
		assert.True(t, ok, "the caller's ValidateConnect runs after the server check")
		validated.Add(1)
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	var app string
	require.NoError(t, pool.QueryRow(ctx, "SHOW application_name").Scan(&app))
	assert.Equal(t, "hooked", app)
	ssl, _ := serverSaysSSL(t, ctx, pool)
	assert.True(t, ssl)
	for name, n := range map[string]*atomic.Int32{"before": &before, "after": &after, "dial": &dialed, "afterNetConnect": &netHook, "validate": &validated} {
		assert.Equal(t, int32(1), n.Load(), name)
	}
}

// TestHooksCannotDisableChecks: a BeforeConnect that strips TLS is refused
// by the re-check; replacing the pool-level hooks entirely still leaves the
// ConnConfig-level checks, which refuse the plaintext connection before the
// password is sent.
func TestHooksCannotDisableChecks(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	pg.SetHBA(t, "hostssl all all 127.0.0.1/32 scram-sha-256", "host all all 127.0.0.1/32 scram-sha-256")
	ctx := ctxT(t)
	strip := func(_ context.Context, cc *pgx.ConnConfig) error {
		cc.TLSConfig = nil
		for _, fb := range cc.Fallbacks {
			fb.TLSConfig = nil
		}
		return nil
	}
	_, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).BeforeConnect(strip).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
	assert.Contains(t, err.Error(), "removed")

	weaken := func(_ context.Context, cc *pgx.ConnConfig) error {
		cc.TLSConfig = &tls.Config{InsecureSkipVerify: true}
		return nil
	}
	_, err = pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).BeforeConnect(weaken).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
	assert.Contains(t, err.Error(), "replaced")

	cfg, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Config(ctx)
	require.NoError(t, err)
	afterPgsecure(cfg, func(cc *pgx.ConnConfig) { _ = strip(ctx, cc) }) // after pgsecure's re-check
	cfg.AfterConnect = nil
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	err = pool.Ping(ctx)
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted, "the server accepts plaintext here, yet the connection is refused")
	assert.NotContains(t, err.Error(), appPassword)

	// Replaced outright, BeforeConnect installs nothing: the tripwires refuse.
	cfg, err = pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Config(ctx)
	require.NoError(t, err)
	cfg.BeforeConnect = strip
	cfg.AfterConnect = nil
	pool2, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool2.Close()
	err = pool2.Ping(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
	assert.NotContains(t, err.Error(), appPassword)
}

// TestServerSideCheckRuns proves the pg_stat_ssl query happens on every new
// connection and only then: the number of verified backends equals the
// number of connections opened, not the number of acquires.
func TestServerSideCheckOncePerConnection(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	var connects atomic.Int32
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).MaxConns(2).
		AfterConnect(func(context.Context, *pgx.Conn) error { connects.Add(1); return nil }).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	pids := map[uint32]bool{}
	for range 20 {
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		r, err := pgsecure.ConnReport(c.Conn())
		require.NoError(t, err)
		assert.Equal(t, c.Conn().PgConn().PID(), r.BackendPID, "the report belongs to this backend")
		pids[r.BackendPID] = true
		c.Release()
	}
	assert.Equal(t, int(connects.Load()), len(pids))
	assert.LessOrEqual(t, len(pids), 2)
}

func TestTLSMinimumVersionFromDSN(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost") + "?ssl_min_protocol_version=TLSv1.3").RootCAFile(pki.CAFile).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	_, version := serverSaysSSL(t, ctx, pool)
	assert.Equal(t, "TLSv1.3", version)
}

func TestCAFileRotation(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	caFile := privateCopy(t, "ca.crt", testutil.ReadFixture(t, "", pki.CAFile)) // rewritten below
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(caFile).MaxConns(4).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	// A broken rewrite of the CA file keeps the last good roots.
	require.NoError(t, os.WriteFile(caFile, []byte("-----BEGIN CERT"), 0o600))
	c1, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer c1.Release()
	c2, err := pool.Acquire(ctx)
	require.NoError(t, err, "a broken CA file does not break new connections")
	defer c2.Release()

	// Rotating the server to a new CA and the bundle to that CA: new
	// connections follow without a restart.
	next := testutil.NewPKI(t)
	_, _, pair := next.Server(t, testutil.LocalServerOptions())
	nextCA, err := os.ReadFile(next.CAFile)
	require.NoError(t, err)
	pg.SetServerCert(t, pair.CertPEM, pair.KeyPEM)
	require.NoError(t, os.WriteFile(caFile, nextCA, 0o600))
	future := time.Now().Add(2 * time.Second)
	require.NoError(t, os.Chtimes(caFile, future, future))
	c3, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer c3.Release()
	r, err := pgsecure.ConnReport(c3.Conn())
	require.NoError(t, err)
	assert.Equal(t, pair.Cert.SerialNumber.String(), r.Leaf().SerialNumber)
}

func TestBuildErrorIsActionableWithoutServer(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	_, err = pgsecure.NewBuilder(fmt.Sprintf("postgres://app:%s@localhost:%d/db?connect_timeout=5", appPassword, port)).RootCAFile(pki.CAFile).Build(ctxT(t))
	require.Error(t, err)
	assert.False(t, errors.Is(err, pgsecure.ErrNotEncrypted), "a closed port is a connection error, not an encryption failure")
	assert.True(t, strings.Contains(err.Error(), "refused") || strings.Contains(err.Error(), "connect"), err.Error())
	assert.NotContains(t, err.Error(), appPassword)
}

// TestEverythingFromPGEnvironment: NewBuilder("") takes host, port,
// database, user, password, sslmode and sslrootcert from libpq's PG*
// variables.
func TestEverythingFromPGEnvironment(t *testing.T) {
	pg, pki := server(t, testutil.LocalServerOptions())
	for k, v := range map[string]string{
		"PGHOST": "localhost", "PGPORT": fmt.Sprint(pg.Port), "PGDATABASE": "postgres", "PGUSER": appUser,
		"PGPASSWORD": appPassword, "PGSSLMODE": "verify-full", "PGSSLROOTCERT": pki.CAFile,
	} {
		t.Setenv(k, v)
	}
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder("").Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	var user string
	require.NoError(t, pool.QueryRow(ctx, "SELECT current_user").Scan(&user))
	assert.Equal(t, appUser, user)
	ssl, _ := serverSaysSSL(t, ctx, pool)
	assert.True(t, ssl)
}
