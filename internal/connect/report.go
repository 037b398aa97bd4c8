package connect

import (
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/verify"
)

// ReportOf returns the verification report attachReport stored on a
// connection. The root package's ConnReport is its public face.
func ReportOf(pgConn *pgconn.PgConn) (verify.Report, bool) {
	r, ok := pgConn.CustomData()[shared.ReportKey].(verify.Report)
	return r, ok
}

// attachReport stores a connection's verification report on it.
func attachReport(pgConn *pgconn.PgConn, r verify.Report) {
	pgConn.CustomData()[shared.ReportKey] = r
}
