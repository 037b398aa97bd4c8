// Package ecosystem is a test-only module: it runs the snippets of
// docs/ecosystem.md (GORM, sqlx, goose, golang-migrate, sqlc-style code)
// against a real PostgreSQL server through a pgsecure pool, with the real
// libraries fetched through the module proxy. It has its own go.mod so the
// root module never links them.
package ecosystem
