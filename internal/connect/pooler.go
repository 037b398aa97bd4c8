package connect

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/verify"
)

// Connection poolers.
//
// Behind a pooler such as PgBouncer the client's TLS session ends at the
// pooler: the certificate, TLS version and cipher the client verified are
// the pooler's, while pg_stat_ssl describes the pooler's own connection to
// the server (the last hop). pgsecure verifies the first hop itself and can
// only read what the server says about the second; it cannot see whether the
// pooler verifies the server's certificate (PgBouncer: server_tls_sslmode =
// verify-full with server_tls_ca_file).
//
// A pooler is recognised by its cancel key: PostgreSQL puts the backend's
// own process id in BackendKeyData, which pg_backend_pid() returns on the
// same connection; a pooler (PgBouncer, Pgpool-II, Odyssey, cloud proxies)
// hands out a key of its own, because the client's session is not tied to
// one server backend.

// poolerFix says how to encrypt the pooler→server hop.
const poolerFix = "encrypt and verify the pooler's connection to the server: for PgBouncer set " +
	"server_tls_sslmode = verify-full and server_tls_ca_file in pgbouncer.ini (and hostssl lines in the server's pg_hba.conf)"

// detectPooler returns a description of the pooler in front of the server,
// or "" when the peer is the server itself (see above).
func detectPooler(pgConn *pgconn.PgConn, backendPID uint32) string {
	if pgConn.PID() == backendPID {
		return ""
	}
	return fmt.Sprintf("a connection pooler or proxy (e.g. PgBouncer): its cancel key names process %d, the server backend is %d; "+
		"the TLS session and certificate are the pooler's and pg_stat_ssl describes the pooler's connection to the server",
		pgConn.PID(), backendPID)
}

// poolerPlaintextError refuses a connection whose pooler talks to the server
// in plaintext.
func poolerPlaintextError(addr, pooler string, backendPID uint32, clientVersion string) *verify.Error {
	return &verify.Error{Addr: addr, Stage: verify.StageServerCheck,
		Seen: fmt.Sprintf("the peer is %s; the client's hop is %s but the server reports ssl=false for backend pid %d, "+
			"so the pooler's connection to the server is plaintext: %s", pooler, clientVersion, backendPID, poolerFix)}
}
