package testutil

import (
	"crypto/tls"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/certgen"
)

func requireSQLState(t *testing.T, err error, code string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, code, pgErr.Code)
}

func TestTwoClustersAtOnceServeVerifiedTLS(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	_, _, pair := pki.Server(t, LocalServerOptions())
	servers := make([]*Postgres, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() {
			servers[i], errs[i] = Start(PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: pair.KeyPEM})
		})
	}
	wg.Wait()
	for i := range servers {
		if servers[i] != nil {
			t.Cleanup(func() { assert.NoError(t, servers[i].Close()) })
		}
		RequirePG(t, errs[i])
	}
	assert.NotEqual(t, servers[0].Port, servers[1].Port)
	assert.NotEqual(t, servers[0].SocketDir, servers[1].SocketDir)

	for _, pg := range servers {
		pg.CreateRole(t, "app", "pw-"+strconv.Itoa(pg.Port))
		pg.CreateDatabase(t, "appdb", "app")
		for _, host := range []string{"127.0.0.1", "localhost"} {
			dsn := strings.Replace(verifyFull(pg, "app", "pw-"+strconv.Itoa(pg.Port), "appdb", pki.CAFile),
				"127.0.0.1", host, 1)
			conn, err := connect(t, dsn)
			require.NoError(t, err, host)
			assert.True(t, sslInUse(t, conn), "pg_stat_ssl.ssl over %s", host)
			assert.Equal(t, pair.Cert.Raw, tlsState(t, conn).PeerCertificates[0].Raw)
		}
	}
}

func TestDefaultHBARefusesPlaintext(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	pg := appServer(t, pki, PGOptions{})
	_, err := connect(t, pg.URL("app", testPassword, "appdb")+"?sslmode=disable")
	requireSQLState(t, err, "28000") // no pg_hba.conf entry ... no encryption
	_, err = connect(t, verifyFull(pg, "app", "wrong", "appdb", pki.CAFile))
	requireSQLState(t, err, "28P01") // scram-sha-256 is enforced over TLS
}

func TestSSLOffServerAnswersPlaintext(t *testing.T) {
	t.Parallel()
	pg := appServer(t, NewPKI(t), PGOptions{SSLOff: true})
	conn, err := connect(t, pg.URL("app", testPassword, "appdb")+"?sslmode=disable")
	require.NoError(t, err)
	assert.False(t, sslInUse(t, conn))
	_, isTLS := conn.PgConn().Conn().(*tls.Conn)
	assert.False(t, isTLS)

	_, err = connect(t, pg.URL("app", testPassword, "appdb")+"?sslmode=require")
	require.Error(t, err, "an ssl=off server must refuse TLS")
	_, err = ServerCertificates(testCtx(t), pg.Addr())
	require.Error(t, err)
}

func TestSetServerCertRotation(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	_, _, first := pki.Server(t, LocalServerOptions())
	pg := StartPostgres(t, PGOptions{ServerCertPEM: first.CertPEM, ServerKeyPEM: first.KeyPEM})
	pg.CreateRole(t, "app", "pw")
	dsn := verifyFull(pg, "app", "pw", "postgres", pki.CAFile)
	before, err := connect(t, dsn)
	require.NoError(t, err)
	assert.Equal(t, first.Cert.SerialNumber, tlsState(t, before).PeerCertificates[0].SerialNumber)

	_, _, second := pki.Server(t, LocalServerOptions())
	require.NotEqual(t, first.Cert.SerialNumber, second.Cert.SerialNumber)
	pg.SetServerCert(t, second.CertPEM, second.KeyPEM)
	after, err := connect(t, dsn)
	require.NoError(t, err)
	assert.Equal(t, second.Cert.SerialNumber, tlsState(t, after).PeerCertificates[0].SerialNumber)
	assert.True(t, sslInUse(t, after))
	st, err := os.Stat(pg.file("server.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestClientCertificateAuthWithClientCA(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	pg := pki.StartPostgres(t, PGOptions{
		ClientCAPEM: pki.CA.CertPEM,
		HBA:         []string{"hostssl all all 127.0.0.1/32 cert"},
	})
	pg.CreateRole(t, "app", "")
	certFile, keyFile, _ := pki.Client(t, "app")
	conn, err := connect(t, verifyFull(pg, "app", "", "postgres", pki.CAFile)+"&sslcert="+certFile+"&sslkey="+keyFile)
	require.NoError(t, err)
	var user string
	require.NoError(t, conn.QueryRow(testCtx(t), "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&user))
	assert.Equal(t, "/CN=app", user)

	_, err = connect(t, verifyFull(pg, "app", "", "postgres", pki.CAFile))
	require.Error(t, err, "without a client certificate cert auth must fail")
}

func TestSetHBA(t *testing.T) {
	t.Parallel()
	pg, dsn, _ := connectedApp(t)
	pg.SetHBA(t, "hostssl all all 127.0.0.1/32 reject")
	_, err := connect(t, dsn)
	requireSQLState(t, err, "28000")

	fatal, _ := runTB(t, func(tb testing.TB) { pg.SetHBA(tb, "hostssl all all 127.0.0.1/32 no-such-method") })
	assert.Contains(t, fatal, "pg_hba.conf rejected")
}

func TestRestartKeepsPortAndData(t *testing.T) {
	t.Parallel()
	pg, dsn, old := connectedApp(t)
	port := pg.Port

	pg.Restart(t)
	assert.Equal(t, port, pg.Port)
	_, err := old.Exec(testCtx(t), "SELECT 1")
	require.Error(t, err, "connections from before the restart must be gone")
	conn, err := connect(t, dsn)
	require.NoError(t, err, "the role must survive the restart")
	assert.True(t, sslInUse(t, conn))
}

func TestConfSettingsApply(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	pg := appServer(t, pki, PGOptions{Conf: map[string]string{"ssl_max_protocol_version": "'TLSv1.2'"}})
	conn, err := connect(t, appDSN(pg, pki))
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS12), tlsState(t, conn).Version)
}

func TestCreateRoleStoresSCRAMVerifier(t *testing.T) {
	t.Parallel()
	pg := StartPostgres(t, PGOptions{SSLOff: true})
	pg.CreateRole(t, `odd "name"`, "it's a secret")
	conn, err := pg.Admin(testCtx(t))
	require.NoError(t, err)
	defer conn.Close(testCtx(t))
	var stored string
	require.NoError(t, conn.QueryRow(testCtx(t), `SELECT rolpassword FROM pg_authid WHERE rolname = 'odd "name"'`).Scan(&stored))
	assert.True(t, strings.HasPrefix(stored, "SCRAM-SHA-256$"), "stored verifier has the wrong form")
	assert.NotContains(t, stored, "secret")
	_, err = connect(t, pg.URL(`odd "name"`, "it's a secret", "postgres")+"?sslmode=disable")
	require.NoError(t, err)
}

func TestExecFailureRedactsLiterals(t *testing.T) {
	t.Parallel()
	pg := StartPostgres(t, PGOptions{SSLOff: true})
	fatal, _ := runTB(t, func(tb testing.TB) {
		pg.Exec(tb, "CREATE ROLE broken LOGIN PASSWORD 'hunter2' NOSUCHOPTION")
	})
	require.NotEmpty(t, fatal)
	assert.Contains(t, fatal, "'[redacted]'")
	assert.NotContains(t, fatal, "hunter2")
}

func TestCloseLeavesNoProcessesOrFiles(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	_, _, pair := pki.Server(t, LocalServerOptions())
	pg, err := Start(PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: pair.KeyPEM})
	RequirePG(t, err)
	pg.CreateRole(t, "app", "pw")
	var backendPIDs []int
	for range 2 {
		conn, err := connect(t, verifyFull(pg, "app", "pw", "postgres", pki.CAFile))
		require.NoError(t, err)
		backendPIDs = append(backendPIDs, int(conn.PgConn().PID()))
	}
	postmaster := pg.proc.pid

	require.NoError(t, pg.Close())
	require.NoError(t, pg.Close(), "Close must be idempotent")
	assert.ErrorIs(t, syscall.Kill(-postmaster, 0), syscall.ESRCH, "process group of the server still alive")
	for _, pid := range backendPIDs {
		assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "backend %d still alive", pid)
	}
	_, err = os.Stat(pg.DataDir)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	_, err := Start(PGOptions{})
	require.Error(t, err)
	assert.False(t, errors.Is(err, ErrPGUnavailable))
	assert.Contains(t, err.Error(), "SSLOff")

	_, err = Start(PGOptions{SSLOff: true, Conf: map[string]string{"no_such_setting": "1"}})
	skipIfUnavailable(t, err)
	require.ErrorIs(t, err, ErrPGStart)
	assert.Contains(t, err.Error(), "no_such_setting", "the error must carry the server log")

	pair, perr := certgen.SelfSigned(LocalServerOptions())
	require.NoError(t, perr)
	other, perr := certgen.SelfSigned(LocalServerOptions())
	require.NoError(t, perr)
	_, err = Start(PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: other.KeyPEM})
	skipIfUnavailable(t, err)
	require.ErrorIs(t, err, ErrPGStart)
	assert.NotContains(t, err.Error(), string(other.KeyPEM[40:80]), "the error must not carry key material")
}

// skipIfUnavailable skips t (outside CI; fails it under CI=true) when err says PostgreSQL is
// missing, so that the remaining assertions can test other failures.
func skipIfUnavailable(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, ErrPGUnavailable) {
		RequirePG(t, err)
	}
}

func TestRequirePG(t *testing.T) {
	unavailable := errors.Join(ErrPGUnavailable, errors.New("no binaries"))
	broken := errors.New("bad conf")

	t.Setenv("CI", "true")
	fatal, skip := runTB(t, func(tb testing.TB) { RequirePG(tb, unavailable) })
	assert.Contains(t, fatal, "no binaries")
	assert.Empty(t, skip)

	t.Setenv("CI", "")
	fatal, skip = runTB(t, func(tb testing.TB) { RequirePG(tb, unavailable) })
	assert.Empty(t, fatal)
	assert.Contains(t, skip, "no binaries")
	fatal, skip = runTB(t, func(tb testing.TB) { RequirePG(tb, broken) })
	assert.Contains(t, fatal, "bad conf")
	assert.Empty(t, skip)
	fatal, skip = runTB(t, func(tb testing.TB) { RequirePG(tb, nil) })
	assert.Empty(t, fatal+skip)
}
