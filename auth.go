package pgsecure

import "github.com/pgsecure/pgsecure/internal/connect"

// ErrInsecureAuth is wrapped when the server asks for an authentication
// method the policy does not allow (by default anything but
// scram-sha-256), when channel binding is required and the exchange cannot
// be bound (no SCRAM-SHA-256-PLUS), or when the server sends before
// authentication a message PostgreSQL never sends there or one larger than
// libpq accepts: the connection is closed before the password, or a hash
// of it (or an unbound SCRAM proof), is sent.
var ErrInsecureAuth = connect.ErrInsecureAuth

// Authentication methods, in libpq's require_auth spelling (as in
// verify.Report.AuthMethod).
const (
	AuthSCRAM    = connect.AuthSCRAM
	AuthMD5      = connect.AuthMD5
	AuthPassword = connect.AuthPassword
	AuthNone     = connect.AuthNone
	AuthGSS      = connect.AuthGSS
	AuthSSPI     = connect.AuthSSPI
	AuthOAuth    = connect.AuthOAuth
)

// TokenRejectedError is returned when the server refuses a login token
// (secrets.Credentials.LoginToken), also after one retry with a fresh one:
// it names the source and what to check, never the token, and wraps the
// server's *pgconn.PgError.
type TokenRejectedError = connect.TokenRejectedError
