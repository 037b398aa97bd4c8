package ecosystem

// The functions between "snippet:" and "end snippet" comments are the code
// of docs/ecosystem.md, verbatim (TestDocsShowTheseSnippets checks it); the
// tests run each against a real PostgreSQL server.

import (
	"context"
	"embed"
	"errors"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/pgsecure/pgsecure"
)

//go:embed migrations
var migrations embed.FS

// snippet: gorm
func openGORM(pool *pgxpool.Pool) (*gorm.DB, error) {
	// Every GORM connection comes from the pgsecure pool: verified, rotated, refused when not encrypted.
	// Never gorm.Open(postgres.Open(dsn)): that opens its own connections without pgsecure.
	return gorm.Open(postgres.New(postgres.Config{Conn: pgsecure.OpenDB(pool)}), &gorm.Config{})
}

// end snippet

// snippet: sqlx
func openSQLX(pool *pgxpool.Pool) *sqlx.DB {
	// "pgx" is the driver name pgx's stdlib registers; it tells sqlx which bind variables to use ($1).
	return sqlx.NewDb(pgsecure.OpenDB(pool), "pgx")
}

// end snippet

// snippet: goose
func migrateWithGoose(ctx context.Context, pool *pgxpool.Pool) error {
	provider, err := goose.NewProvider(goose.DialectPostgres, pgsecure.OpenDB(pool), mustSub(migrations, "migrations/goose"))
	if err != nil {
		return err
	}
	defer provider.Close() // closes the *sql.DB (not the pool); do it before pool.Close()
	_, err = provider.Up(ctx)
	return err
}

// end snippet

// snippet: golang-migrate
func migrateWithMigrate(pool *pgxpool.Pool) error {
	driver, err := migratepgx.WithInstance(pgsecure.OpenDB(pool), &migratepgx.Config{})
	if err != nil {
		return err
	}
	// From here the driver holds one pool connection until it is closed: without that, pool.Close() waits forever.
	source, err := iofs.New(migrations, "migrations/migrate")
	if err != nil {
		driver.Close()
		return err
	}
	m, err := migrate.NewWithInstance("iofs", source, "pgx5", driver)
	if err != nil {
		driver.Close()
		return err
	}
	defer m.Close() // closes the driver
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return err
	}
	return nil
}

// end snippet

// snippet: sqlc
// DBTX is the interface sqlc generates for the pgx/v5 driver (sql_package: "pgx/v5");
// *pgxpool.Pool satisfies it, so generated queries run on the pgsecure pool as they are.
type DBTX interface {
	Exec(context.Context, string, ...interface{}) (pgconn.CommandTag, error)
	Query(context.Context, string, ...interface{}) (pgx.Rows, error)
	QueryRow(context.Context, string, ...interface{}) pgx.Row
}

type Queries struct{ db DBTX }

func New(db DBTX) *Queries { return &Queries{db: db} }

// usage: q := New(pool) — with pool from pgsecure's Build.

// end snippet

// ServerSaysEncrypted is what sqlc would generate for a one-row query: the
// server's own view of this backend's TLS state.
func (q *Queries) ServerSaysEncrypted(ctx context.Context) (bool, error) {
	var ssl bool
	err := q.db.QueryRow(ctx, "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()").Scan(&ssl)
	return ssl, err
}

// migrateDriver is the first step of migrateWithMigrate alone.
func migrateDriver(pool *pgxpool.Pool) (interface{ Close() error }, error) {
	return migratepgx.WithInstance(pgsecure.OpenDB(pool), &migratepgx.Config{})
}
