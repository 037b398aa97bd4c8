package proof

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowStatements are statements that outlive a short context on an
// established connection. The COMMIT is slowed by a deferred constraint
// trigger, so the server may have committed when the client gives up: the
// error must never say it is safe to retry.
var slowStatements = []struct {
	name string
	run  func(ctx context.Context, pool *pgxpool.Pool, db *sql.DB) error
}{
	{"Exec", func(ctx context.Context, pool *pgxpool.Pool, _ *sql.DB) error {
		_, err := pool.Exec(ctx, "SELECT pg_sleep(2)")
		return err
	}},
	{"QueryRow", func(ctx context.Context, pool *pgxpool.Pool, _ *sql.DB) error {
		var v any
		return pool.QueryRow(ctx, "SELECT pg_sleep(2)").Scan(&v)
	}},
	{"tx.Commit", func(ctx context.Context, pool *pgxpool.Pool, _ *sql.DB) error {
		// The transaction runs on its own (longer) context up to the
		// COMMIT; only the COMMIT gets the short one.
		tx, err := pool.Begin(context.Background())
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.Rollback(context.Background()) //nolint:errcheck // after a failed commit the connection is gone
		if _, err := tx.Exec(context.Background(), "INSERT INTO slow_commit VALUES (1)"); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return tx.Commit(ctx)
	}},
	{"database/sql", func(ctx context.Context, _ *pgxpool.Pool, db *sql.DB) error {
		_, err := db.ExecContext(ctx, "SELECT pg_sleep(2)")
		return err
	}},
}

// TestFaultDeadlineOnEstablishedConnection is issue 24's first finding: a
// context deadline that interrupts a statement on a verified connection
// (older than its own connect) must give the same error as raw pgx on the
// same server: a timeout (pgconn.Timeout, errors.Is DeadlineExceeded), never
// pgsecure's connect-time TimeoutError, and never "safe to retry" once the
// statement was sent. Raw pgx runs beside pgsecure in the same test as the
// reference.
func TestFaultDeadlineOnEstablishedConnection(t *testing.T) {
	t.Parallel() // its own server; the statements sleep 2 s against a 300 ms deadline
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	pg.Exec(t,
		"CREATE TABLE slow_commit (v int)",
		`CREATE FUNCTION slow_commit_check() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$`,
		"CREATE CONSTRAINT TRIGGER slow_commit_check AFTER INSERT ON slow_commit DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit_check()",
		"GRANT INSERT, SELECT ON slow_commit TO "+appUser)
	ctx := ctxT(t, 2*time.Minute)

	secure, err := pgsecure.NewBuilder(dsn("localhost", pg.Port, "")).RootCAFile(pki.CAFile).Logger(quiet).MaxConns(1).Build(ctx)
	require.NoError(t, err)
	t.Cleanup(secure.Close)
	rawCfg, err := pgxpool.ParseConfig(dsn("localhost", pg.Port, "sslmode=verify-full&sslrootcert="+pki.CAFile+"&pool_max_conns=1"))
	require.NoError(t, err)
	raw, err := pgxpool.NewWithConfig(ctx, rawCfg)
	require.NoError(t, err)
	t.Cleanup(raw.Close)
	pools := []struct {
		name string
		pool *pgxpool.Pool
		db   *sql.DB
	}{{"raw pgx", raw, stdlib.OpenDBFromPool(raw)}, {"pgsecure", secure, pgsecure.OpenDB(secure)}}

	for _, st := range slowStatements {
		for _, p := range pools {
			// A connection older than its connect: open it, use it, let it
			// age past the time its connect took, then interrupt a
			// statement on it.
			var pid uint32
			require.NoError(t, p.pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid), "%s: warm-up", p.name)
			time.Sleep(200 * time.Millisecond)
			require.NoError(t, p.pool.Ping(ctx), "%s: the connection is usable before the slow statement", p.name)

			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			err := st.run(short, p.pool, p.db)
			cancel()
			require.Error(t, err, "%s %s: the statement outlives its context", p.name, st.name)
			t.Logf("%s %s: %T %v", p.name, st.name, err, err)
			assert.True(t, pgconn.Timeout(err), "%s %s: pgconn.Timeout(%v)", p.name, st.name, err)
			assert.ErrorIs(t, err, context.DeadlineExceeded, "%s %s", p.name, st.name)
			assert.False(t, pgconn.SafeToRetry(err), "%s %s: the statement was sent; SafeToRetry must be false: %v", p.name, st.name, err)
			var te *connect.TimeoutError
			assert.False(t, errors.As(err, &te), "%s %s: a connect-time timeout error on an established connection: %v", p.name, st.name, err)
			assert.NotContains(t, err.Error(), "timed out connecting", "%s %s", p.name, st.name)
			assert.False(t, strings.Contains(err.Error(), "conn closed"), "%s %s: %v", p.name, st.name, err)

			// The pool recovers: the next statement works.
			require.NoError(t, p.pool.Ping(ctx), "%s %s: the pool serves again after the timeout", p.name, st.name)
		}
	}
}

// TestFaultConnectTimeoutErrorOnlyDuringConnect: pgsecure's own timeout
// error (host and stage named) describes a connect that ran out of time;
// it is what Build returns when the server never answers within
// connect_timeout, and only then.
func TestFaultConnectTimeoutErrorOnlyDuringConnect(t *testing.T) {
	pki, proxy := proxied(t)
	ctx := ctxT(t, time.Minute)
	pool, err := pgsecure.NewBuilder(dsn("localhost", proxy.Port, "connect_timeout=1")).RootCAFile(pki.CAFile).Logger(quiet).MaxConns(1).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	// Established: a link that suddenly stalls interrupts a statement with
	// pgx's timeout, not a connect-time error.
	require.NoError(t, pool.Ping(ctx))
	proxy.SetLatency(2 * time.Second)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = pool.Exec(short, "SELECT 1")
	cancel()
	require.Error(t, err)
	var te *connect.TimeoutError
	assert.False(t, errors.As(err, &te), "established connection: %v", err)
	assert.True(t, pgconn.Timeout(err), "established connection: %v", err)
	assert.False(t, pgconn.SafeToRetry(err), "established connection: the query was sent: %v", err)

	// Done with the established connection: close its pool while the link
	// still passes traffic. Closed behind the black hole, pgx's cancel
	// request for the interrupted statement would hang for its 15 s
	// close timeout.
	proxy.SetLatency(0)
	pool.Close()

	// Connecting: a link that swallows new connections makes a connect
	// fail with the connect-time error naming the host and stage.
	proxy.SetBlackhole(true)
	_, err = pgsecure.NewBuilder(dsn("localhost", proxy.Port, "connect_timeout=1")).RootCAFile(pki.CAFile).Logger(quiet).Build(ctx)
	require.Error(t, err)
	require.ErrorAs(t, err, &te, "a connect that ran out of time: %v", err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "timed out after")
}
