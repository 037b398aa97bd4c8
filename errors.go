package pgsecure

import (
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/verify"
)

var (
	// ErrInsecureConfig is wrapped by every error that refuses a
	// configuration because it would weaken the connection: an sslmode other
	// than verify-full, a unix-socket host, no pinned CA, an unsupported TLS
	// setting. Fix the configuration; retrying will not help.
	ErrInsecureConfig = shared.ErrInsecureConfig

	// ErrNotEncrypted is wrapped by every error that refuses a connection
	// because it is not verifiably encrypted end to end: the server declined
	// TLS, the TLS handshake or its verification failed, or the server says
	// the session is not encrypted. A *verify.Error (and a
	// *CertificateError) wraps it.
	ErrNotEncrypted = shared.ErrNotEncrypted

	// ErrUntrustedServer is wrapped (together with ErrNotEncrypted) when the
	// server's certificate fails verification: unknown CA, expired, wrong
	// host, wrong key usage, pin mismatch. See *CertificateError.
	ErrUntrustedServer = shared.ErrUntrustedServer

	// ErrCredentialsRejected is wrapped when the server kept rejecting the
	// credentials from the credential source (SQLSTATE 28P01) for the whole
	// connect_timeout, although the login was tried again with backoff, with
	// the source's newest and its previous credentials. The server's
	// *pgconn.PgError is wrapped too. Make the database password and the
	// secret agree.
	ErrCredentialsRejected = connect.ErrCredentialsRejected
)

// ConfigError is a refused configuration: which setting, where it came from,
// and how to fix it (see verify.ConfigError). It wraps ErrInsecureConfig.
type ConfigError = verify.ConfigError

func configErr(setting, from, problem, fix string) error {
	return &ConfigError{Setting: setting, From: from, Problem: problem, Fix: fix}
}

// CertificateError is a server certificate that failed verification (see
// verify.CertificateError). It wraps ErrUntrustedServer, ErrNotEncrypted and
// the x509 cause.
type CertificateError = verify.CertificateError

// TimeoutError is a connection attempt that ran out of time, naming the host
// and the stage it was in (see verify.TimeoutError).
type TimeoutError = verify.TimeoutError

// ClientCertificateRequiredError is the server refusing a connection that
// presented no client certificate (see
// verify.ClientCertificateRequiredError). It wraps the server's
// *pgconn.PgError.
type ClientCertificateRequiredError = verify.ClientCertificateRequiredError

// AuthMethodError is a login pgsecure ended because of how the server asked
// the client to authenticate (see verify.AuthMethodError). It wraps
// ErrInsecureAuth.
type AuthMethodError = verify.AuthMethodError

// CredentialsRejectedError is the server rejecting a credential source's
// password (SQLSTATE 28P01) until the connect ran out of time, although
// pgsecure retried with the source's newest and previous credentials. It
// names the source, never the password, and wraps ErrCredentialsRejected and
// the server's *pgconn.PgError.
type CredentialsRejectedError = connect.RejectedError

// ErrKeyPassphrase is wrapped by the error returned when an encrypted private
// key cannot be decrypted with the passphrase given (sslpassword or
// ClientKeyPassphrase). The message names the key file but never contains
// the passphrase or any key material.
var ErrKeyPassphrase = shared.ErrKeyPassphrase
