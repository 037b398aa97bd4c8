package pgsecure

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/verify"
)

// ReportOf returns the verification report of one of the pool's
// connections: an idle one if there is one, else a new one, which is
// verified before it is returned, as every new connection is. It acquires
// the connection and releases it before returning, so it costs no query.
// The error wraps the pool's Acquire error, or ErrNotEncrypted when the
// connection carries no report (the pool was not built by pgsecure, or a
// hook replaced its checks).
func ReportOf(ctx context.Context, pool *pgxpool.Pool) (verify.Report, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return verify.Report{}, fmt.Errorf("pgsecure: acquiring a connection for its verification report: %w", err)
	}
	defer c.Release()
	return ConnReport(c.Conn())
}

// ConnReport returns the verification report pgsecure attached to a
// connection when it verified it. The error wraps ErrNotEncrypted when the connection
// carries no report: it was not opened by a pgsecure pool, or a hook
// replaced pgsecure's checks.
func ConnReport(conn *pgx.Conn) (verify.Report, error) {
	if r, ok := connect.ReportOf(conn.PgConn()); ok {
		return r, nil
	}
	return verify.Report{}, fmt.Errorf("%w: the connection carries no verification report: "+
		"it was not opened by a pool from pgsecure's Builder (or a hook replaced pgsecure's checks); build the pool with Builder.Build", ErrNotEncrypted)
}

// AuthMethod is an authentication method, spelled as libpq's require_auth
// spells it (verify.Report.AuthMethod).
type AuthMethod = verify.AuthMethod

// Authentication methods.
const (
	AuthSCRAM    = verify.AuthSCRAM
	AuthMD5      = verify.AuthMD5
	AuthPassword = verify.AuthPassword
	AuthNone     = verify.AuthNone
	AuthGSS      = verify.AuthGSS
	AuthSSPI     = verify.AuthSSPI
	AuthOAuth    = verify.AuthOAuth
)
