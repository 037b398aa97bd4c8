// Package shared holds the few values the public packages (the root and
// verify) and the pipeline (internal/connect) must agree on, so that each is
// defined once.
package shared

import "errors"

// ReportKey is the pgconn.PgConn.CustomData key of a connection's
// verify.Report.
const ReportKey = "pgsecure.verify.report"

// ErrNotEncrypted is pgsecure.ErrNotEncrypted (its one home for users).
var ErrNotEncrypted = errors.New("pgsecure: connection is not encrypted")

// ErrKeyPassphrase is pgsecure.ErrKeyPassphrase (its one home for users).
var ErrKeyPassphrase = errors.New("pgsecure: wrong passphrase for private key")

// ErrInsecureAuth is pgsecure.ErrInsecureAuth (its one home for users).
var ErrInsecureAuth = errors.New("pgsecure: authentication method not allowed")

// ErrInsecureConfig is pgsecure.ErrInsecureConfig (its one home for users).
var ErrInsecureConfig = errors.New("pgsecure: insecure configuration")

// ErrUntrustedServer is pgsecure.ErrUntrustedServer (its one home for users).
var ErrUntrustedServer = errors.New("pgsecure: server certificate not trusted")

// ErrCredentialsRejected is pgsecure.ErrCredentialsRejected (its one home for users).
var ErrCredentialsRejected = errors.New("pgsecure: credentials rejected")
