package ecosystem

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
)

// startPool starts a real PostgreSQL 15 server with a TLS certificate of a
// fresh CA and returns a pgsecure pool to it; the test fails if the pool
// still holds a connection when it ends (pool.Close would wait forever).
func startPool(t *testing.T) (context.Context, *pgxpool.Pool) {
	t.Helper()
	ctx, pool := startPoolIn(t, "app") // app owns the database, so it may create tables
	t.Cleanup(func() {
		assert.Zero(t, pool.Stat().AcquiredConns(), "a connection is still held: pool.Close would wait for it forever")
		pool.Close()
	})
	return ctx, pool
}

// startPoolIn is startPool for a database the test names (created, owned
// by app, when it is not "postgres"), without the closing check.
func startPoolIn(t *testing.T, database string) (context.Context, *pgxpool.Pool) {
	t.Helper()
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "app", "ecosystem-pw")
	if database != "postgres" {
		pg.CreateDatabase(t, database, "app")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	pool, err := pgsecure.NewBuilder(pg.URL("app", "ecosystem-pw", database)).RootCAFile(pki.CAFile).Build(ctx)
	require.NoError(t, err)
	return ctx, pool
}

// serverSaysEncrypted asks the server, on one pool connection, whether that
// backend's connection is TLS.
func serverSaysEncrypted(t *testing.T, ctx context.Context, pool *pgxpool.Pool) {
	t.Helper()
	ssl, err := New(pool).ServerSaysEncrypted(ctx)
	require.NoError(t, err)
	assert.True(t, ssl)
}

func TestGORM(t *testing.T) {
	ctx, pool := startPool(t)
	db, err := openGORM(pool)
	require.NoError(t, err)
	type Account struct {
		ID   uint
		Name string
	}
	require.NoError(t, db.WithContext(ctx).AutoMigrate(&Account{}))
	require.NoError(t, db.WithContext(ctx).Create(&Account{Name: "gorm"}).Error)
	var got Account
	require.NoError(t, db.WithContext(ctx).First(&got, "name = ?", "gorm").Error)
	assert.Equal(t, "gorm", got.Name)

	var ssl bool
	require.NoError(t, db.WithContext(ctx).Raw("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl).Error)
	assert.True(t, ssl, "GORM's connection is the pgsecure pool's TLS connection")
	sqlDB, err := db.DB()
	require.NoError(t, err)
	require.NoError(t, sqlDB.Close()) // closes the *sql.DB, not the pool
	serverSaysEncrypted(t, ctx, pool)
}

func TestSQLX(t *testing.T) {
	ctx, pool := startPool(t)
	db := openSQLX(pool)
	defer db.Close()
	var ssl []bool
	require.NoError(t, db.SelectContext(ctx, &ssl, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND $1", true))
	assert.Equal(t, []bool{true}, ssl, "sqlx binds $1 for the pgx driver name and runs on the pgsecure pool")
}

func TestGoose(t *testing.T) {
	ctx, pool := startPool(t)
	require.NoError(t, migrateWithGoose(ctx, pool))
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM goose_accounts").Scan(&n))
	assert.Zero(t, n, "the goose migration created its table")
	require.NoError(t, migrateWithGoose(ctx, pool), "a second run has nothing to do")
}

func TestGolangMigrate(t *testing.T) {
	ctx, pool := startPool(t)
	require.NoError(t, migrateWithMigrate(pool))
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM migrate_accounts").Scan(&n))
	assert.Zero(t, n, "the golang-migrate migration created its table")
	require.NoError(t, migrateWithMigrate(pool), "a second run has nothing to do")
}

// TestGolangMigrateHoldsAConnectionUntilClosed is why the close order is
// documented: an open migrate instance holds one pool connection, which
// pool.Close waits for.
func TestGolangMigrateHoldsAConnectionUntilClosed(t *testing.T) {
	_, pool := startPool(t)
	driver, err := migrateDriver(pool)
	require.NoError(t, err)
	assert.EqualValues(t, 1, pool.Stat().AcquiredConns(), "the driver holds a connection")
	require.NoError(t, driver.Close())
	assert.Zero(t, pool.Stat().AcquiredConns(), "released by Close")
}

// TestGolangMigrateKeepsAConnectionWhenWithInstanceFails pins a behaviour of
// golang-migrate v4.20.1 that docs/ecosystem.md warns about: when the driver
// cannot create its version table (here: no CREATE privilege on the public
// schema, PostgreSQL 15's default for a role that does not own the
// database), WithInstance returns the error but keeps the connection it took,
// so pool.Close would wait forever. The pool is therefore not closed here; the
// server's shutdown ends the connection.
func TestGolangMigrateKeepsAConnectionWhenWithInstanceFails(t *testing.T) {
	_, pool := startPoolIn(t, "postgres")
	_, err := migrateDriver(pool)
	require.ErrorContains(t, err, "permission denied for schema public")
	assert.EqualValues(t, 1, pool.Stat().AcquiredConns(), "golang-migrate kept the connection it took")
}

func TestSQLCStyleQueriesOnThePool(t *testing.T) {
	ctx, pool := startPool(t)
	var _ DBTX = pool // compile-time: *pgxpool.Pool is what sqlc's pgx/v5 code takes
	serverSaysEncrypted(t, ctx, pool)
}

var snippetRE = regexp.MustCompile(`(?s)// snippet: ([a-z-]+)\n(.*?)\n// end snippet`)
var docBlockRE = regexp.MustCompile("(?s)<!-- snippet: ([a-z-]+) -->\n```go\n(.*?)```")

// TestDocsShowTheseSnippets keeps docs/ecosystem.md and the code the tests
// run identical, snippet for snippet.
func TestDocsShowTheseSnippets(t *testing.T) {
	src, err := os.ReadFile("snippets.go")
	require.NoError(t, err)
	doc, err := os.ReadFile("../../docs/ecosystem.md")
	require.NoError(t, err)
	code := map[string]string{}
	for _, m := range snippetRE.FindAllStringSubmatch(string(src), -1) {
		code[m[1]] = strings.TrimSpace(m[2])
	}
	require.Len(t, code, 5)
	shown := map[string]string{}
	for _, m := range docBlockRE.FindAllStringSubmatch(string(doc), -1) {
		shown[m[1]] = strings.TrimSpace(m[2])
	}
	assert.Equal(t, code, shown, "docs/ecosystem.md must show the tested snippets verbatim")
}
