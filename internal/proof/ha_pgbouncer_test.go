package proof

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/verify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reportOf acquires a connection from pool and returns its verification
// report.
func reportOf(t *testing.T, pool *pgxpool.Pool) verify.Report {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	r, err := pgsecure.ConnReport(conn.Conn())
	require.NoError(t, err, "the connection carries pgsecure's verification report")
	return r
}

// TestPgBouncerPooling: pgsecure connects through a real PgBouncer (TLS from
// the client, SCRAM to the bouncer, server_tls_sslmode=verify-full to a
// TLS-only server) in session and transaction pooling. It verifies the
// client→bouncer hop itself (the bouncer's certificate, not the server's),
// the report says the peer is a pooler and that pg_stat_ssl (ssl=true)
// describes the bouncer→server hop, and concurrent queries and transactions
// work. A direct connection to the same server is not reported as a pooler.
func TestPgBouncerPooling(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	pg.Exec(t, "CREATE TABLE items (id int PRIMARY KEY)", "GRANT SELECT, INSERT ON items TO "+appUser)
	serverChain, err := testutil.ServerCertificates(ctxT(t, 10*time.Second), pg.Addr())
	require.NoError(t, err)
	serverPin := certgen.SPKIPin(serverChain[0])

	direct, err := pgsecure.NewBuilder(dsn("localhost", pg.Port, "")).RootCAFile(pki.CAFile).Logger(quiet).Build(ctxT(t, 30*time.Second))
	require.NoError(t, err)
	defer direct.Close()
	r := reportOf(t, direct)
	assert.Empty(t, r.Pooler, "a direct connection is not a pooler")
	assert.Equal(t, serverPin, r.Leaf().SPKIPin)

	for i, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			b := pki.StartPgBouncer(t, pg, testutil.BouncerOptions{PoolMode: mode, Users: []string{appUser}})
			ctx := ctxT(t, time.Minute)
			// Transaction pooling (PgBouncer < 1.21) cannot keep named
			// prepared statements: pgx must use unnamed ones.
			pool, err := pgsecure.NewBuilder(dsn("localhost", b.Port, "default_query_exec_mode=exec")).
				RootCAFile(pki.CAFile).Logger(quiet).MaxConns(6).Build(ctx)
			require.NoError(t, err, "bouncer log:\n%s", b.LogTail())
			defer pool.Close()

			r := reportOf(t, pool)
			assert.Contains(t, r.Pooler, "pooler", "the report says the peer is a pooler")
			assert.NotEqual(t, serverPin, r.Leaf().SPKIPin, "the verified certificate is the bouncer's, not the server's")
			assert.Equal(t, "localhost", r.ServerName)
			assert.True(t, r.Server.SSL, "pg_stat_ssl: the bouncer→server hop is TLS")
			assert.Equal(t, pgsecure.AuthSCRAM, r.AuthMethod, "SCRAM to the bouncer")
			assert.Equal(t, "SCRAM-SHA-256", r.SASLMechanism, "PgBouncer 1.18 offers no channel binding")
			assert.Contains(t, r.String(), "pooler:")

			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range 8 {
						id := i*1000 + g*10 + k
						tx, err := pool.Begin(ctx)
						if err == nil {
							_, err = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", id)
							if err == nil {
								err = tx.Commit(ctx)
							} else {
								_ = tx.Rollback(context.Background())
							}
						}
						if err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				assert.NoError(t, err)
			}
			var n int
			require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM items WHERE id / 1000 = $1", i).Scan(&n))
			assert.Equal(t, 64, n)
		})
	}
}

// TestPgBouncerPlaintextServerHopRefused: when PgBouncer talks to the server
// in plaintext (server_tls_sslmode=disable, and the server allows it), the
// client's hop is still verified TLS, but pgsecure refuses the connection:
// the server reports ssl=false, and the error says the peer is a pooler and
// how to fix it (server_tls_sslmode).
func TestPgBouncerPlaintextServerHopRefused(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions(), "host all all 127.0.0.1/32 scram-sha-256")
	b := pki.StartPgBouncer(t, pg, testutil.BouncerOptions{ServerTLSMode: "disable", Users: []string{appUser}})
	_, err := pgsecure.NewBuilder(dsn("localhost", b.Port, "")).RootCAFile(pki.CAFile).Logger(quiet).Build(ctxT(t, 30*time.Second))
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	for _, want := range []string{"pooler", "ssl=false", "server_tls_sslmode"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), appPassword)
}
