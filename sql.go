package pgsecure

import (
	"database/sql"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// OpenDB returns a *sql.DB whose connections all come from pool, so
// database/sql code gets the same verified connections (and hooks) as pgx
// code. Do not use sql.Open("pgx", dsn): it would bypass pgsecure.
// Closing the *sql.DB does not close the pool.
func OpenDB(pool *pgxpool.Pool) *sql.DB {
	return stdlib.OpenDBFromPool(pool)
}
