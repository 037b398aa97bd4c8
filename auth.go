package pgsecure

import (
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/verify"
)

// ErrInsecureAuth is wrapped when the server asks for an authentication
// method the policy does not allow (by default anything but
// scram-sha-256), when channel binding is required and the exchange cannot
// be bound (no SCRAM-SHA-256-PLUS), or when the server sends before
// authentication a message PostgreSQL never sends there or one larger than
// libpq accepts: the connection is closed before the password, or a hash
// of it (or an unbound SCRAM proof), is sent.
var ErrInsecureAuth = connect.ErrInsecureAuth

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

// TokenRejectedError is returned when the server refuses a login token
// (secrets.Credentials.LoginToken), also after one retry with a fresh one:
// it names the source and what to check, never the token, and wraps the
// server's *pgconn.PgError.
type TokenRejectedError = connect.TokenRejectedError
