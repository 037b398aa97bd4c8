package pgsecure

import "github.com/pgsecure/pgsecure/internal/connect"

// ErrInsecureAuth is wrapped when the server asks for an authentication
// method the policy does not allow (by default anything but
// scram-sha-256): the connection is closed before the password, or a hash
// of it, is sent.
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
