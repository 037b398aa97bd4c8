package testutil

import (
	"context"
	"crypto/tls"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// fakeTB records Fatalf/Skipf instead of stopping the real test, so the
// harness's own failure paths can be asserted. Call it through runTB.
type fakeTB struct {
	testing.TB
	mu          sync.Mutex
	fatal, skip string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.mu.Lock()
	f.skip = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// runTB runs fn with a fakeTB wrapping t and returns what it recorded.
func runTB(t *testing.T, fn func(tb testing.TB)) (fatal, skip string) {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal, f.skip
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect opens a plain pgx connection to dsn and closes it when t ends.
func connect(t *testing.T, dsn string) (*pgx.Conn, error) {
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	return conn, err
}

// sslInUse asks the server whether this connection's last hop is TLS.
func sslInUse(t *testing.T, conn *pgx.Conn) bool {
	var ssl bool
	require.NoError(t, conn.QueryRow(testCtx(t), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl))
	return ssl
}

// tlsState returns the client-side TLS state of conn; it fails t if conn is
// not TLS.
func tlsState(t *testing.T, conn *pgx.Conn) tls.ConnectionState {
	tc, ok := conn.PgConn().Conn().(*tls.Conn)
	require.True(t, ok, "connection is not TLS: %T", conn.PgConn().Conn())
	return tc.ConnectionState()
}

// testPassword is the password of role "app" on servers made by appServer.
const testPassword = "correct-horse-battery-staple"

// appServer starts a server (TLS with a certificate from pki unless o.SSLOff)
// with role "app" (password testPassword) owning database "appdb".
func appServer(t *testing.T, pki *PKI, o PGOptions) *Postgres {
	t.Helper()
	pg := pki.StartPostgres(t, o)
	pg.CreateRole(t, "app", testPassword)
	pg.CreateDatabase(t, "appdb", "app")
	return pg
}

// appDSN is a verify-full DSN for role "app" on a server made by appServer.
func appDSN(pg *Postgres, pki *PKI) string {
	return verifyFull(pg, "app", testPassword, "appdb", pki.CAFile)
}

// connectedApp starts an appServer with default options and opens a
// verify-full connection to it as "app".
func connectedApp(t *testing.T) (pg *Postgres, dsn string, conn *pgx.Conn) {
	t.Helper()
	pki := NewPKI(t)
	pg = appServer(t, pki, PGOptions{})
	dsn = appDSN(pg, pki)
	conn, err := connect(t, dsn)
	require.NoError(t, err)
	return pg, dsn, conn
}

// verifyFull returns a DSN for user/password@db that insists on TLS
// verify-full against caFile.
func verifyFull(pg *Postgres, user, password, db, caFile string) string {
	return pg.URL(user, password, db) + "?sslmode=verify-full&sslrootcert=" + caFile
}
