package verify

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/internal/shared"
)

// TimeoutError is a connection attempt that ran out of time: it names the
// host and the stage it was in. It is produced only while connecting; a
// deadline on an established connection gives pgx's own timeout error.
// errors.Is(err, context.DeadlineExceeded) and
// errors.Is(err, os.ErrDeadlineExceeded) hold; it deliberately neither
// unwraps to a net.Error nor has a Timeout method, because pgx replaces any
// such error by a bare "timeout: context deadline exceeded".
type TimeoutError struct {
	// Host is the host as configured; Addr the address dialled.
	Host, Addr string
	// Stage is the stage the attempt was in when time ran out.
	Stage Stage
	// Elapsed is how long the attempt had been running.
	Elapsed time.Duration
	// Err is the deadline error.
	Err error
}

func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("pgsecure: timed out connecting to %s (%s) during %s after %s", e.Host, e.Addr, e.Stage, e.Elapsed.Round(time.Millisecond))
	if h := e.Hint(); h != "" {
		msg += "; " + h
	}
	return msg + " (connect_timeout limits each host)"
}

// Hint says what to check, for the stage the attempt timed out in.
func (e *TimeoutError) Hint() string {
	switch e.Stage {
	case StageTCP:
		return "the server did not accept the TCP connection: check the host, the port and any firewall in between"
	case StageTLSRequest:
		return "the server accepted TCP but did not answer the TLS request: is it a PostgreSQL server, and is something in between holding the connection?"
	case StageTLSHandshake:
		return "the TLS handshake did not finish: check the server's ssl settings and anything that inspects TLS in between"
	case StageAuth:
		return "the server did not finish authentication: check its load and pg_hba.conf (LDAP/RADIUS back-ends can hang)"
	case StageServerCheck:
		return "the server did not answer the server-side check: it may be overloaded"
	}
	return ""
}

// Is reports the deadline errors a timeout stands for.
func (e *TimeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == os.ErrDeadlineExceeded
}

// ClientCertificateRequiredError is a login refused (SQLSTATE 28000) before
// any authentication request by a server that asked for a client
// certificate in the TLS handshake, when none was configured: pg_hba.conf
// requires one (cert authentication, clientcert=verify-ca/verify-full) or
// has no line for the connection; the server's message, which it wraps,
// says which. It is told from what happened, not from that message.
type ClientCertificateRequiredError struct {
	Server *pgconn.PgError
}

// clientCertificateFix is what to do about a ClientCertificateRequiredError.
const clientCertificateFix = "give one with " + shared.SSLCertKey + "; " +
	"if the server's message says no pg_hba.conf entry, add a hostssl line for this user and database instead"

func (e *ClientCertificateRequiredError) Error() string {
	return fmt.Sprintf("pgsecure: %s; %s", e.Problem(), e.Fix())
}

// Problem says what happened, with the server's message.
func (e *ClientCertificateRequiredError) Problem() string {
	return fmt.Sprintf("the server asked for a client certificate, none was configured, and it refused the login (server: %s, SQLSTATE %s)", e.Server.Message, e.Server.Code)
}

// Fix says what to do.
func (e *ClientCertificateRequiredError) Fix() string { return clientCertificateFix }

// Unwrap returns the server's error.
func (e *ClientCertificateRequiredError) Unwrap() error { return e.Server }

// AuthMethodError is a login pgsecure ended because of how the server
// asked the client to authenticate: a method the policy (require_auth) does
// not allow, an exchange not bound to the TLS channel when channel binding
// is required, or messages before authentication that PostgreSQL never
// sends. Nothing more was sent. It wraps pgsecure.ErrInsecureAuth.
type AuthMethodError struct {
	// Method is the method the server asked for, in require_auth spelling
	// ("md5", "password", "none", ...); "" when the refusal is not about
	// the method.
	Method AuthMethod
	// Problem says what the server did; Fix says what to change.
	Problem, Fix string
}

func (e *AuthMethodError) Error() string {
	return "pgsecure: authentication method not allowed: " + e.Problem + "; " + e.Fix
}

// Unwrap returns pgsecure.ErrInsecureAuth.
func (e *AuthMethodError) Unwrap() error { return shared.ErrInsecureAuth }

// ConfigError is a refused configuration: which setting, where it came from,
// and how to fix it. It wraps ErrInsecureConfig.
type ConfigError struct {
	// Setting is the libpq key or builder method concerned (e.g. "sslmode").
	Setting string
	// From says where the value came from ("connection string", "PGSSLMODE
	// environment variable", "builder").
	From string
	// Problem says what is wrong; Fix says what to do.
	Problem, Fix string
	// Err is an underlying cause (file not found, parse error), if any.
	Err error
}

func (e *ConfigError) Error() string {
	msg := "pgsecure: " + e.Setting
	if e.From != "" {
		msg += " (from " + e.From + ")"
	}
	msg += ": " + e.Problem
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

// Unwrap returns ErrInsecureConfig and the cause.
func (e *ConfigError) Unwrap() []error {
	if e.Err == nil {
		return []error{shared.ErrInsecureConfig}
	}
	return []error{shared.ErrInsecureConfig, e.Err}
}

// CertificateError is a server certificate that failed verification. It
// wraps ErrUntrustedServer, ErrNotEncrypted and the x509 cause.
type CertificateError struct {
	// Host is the host name or address the connection was made to.
	Host string
	// Subject and Names describe the leaf certificate presented.
	Subject string
	Names   []string
	// Problem says what failed; Fix says how to fix it.
	Problem, Fix string
	Err          error
}

func (e *CertificateError) Error() string {
	msg := fmt.Sprintf("pgsecure: server certificate for host %q refused: %s", e.Host, e.Problem)
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

// Unwrap returns ErrUntrustedServer, ErrNotEncrypted and the cause.
func (e *CertificateError) Unwrap() []error {
	errs := []error{shared.ErrUntrustedServer, shared.ErrNotEncrypted}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// CredentialsRejectedError is a connect that ended while the server kept
// rejecting the credentials from the source (SQLSTATE 28P01), although the
// login was retried with the source's newest and previous credentials. It
// wraps ErrCredentialsRejected and the server's error, and names the
// source; it never holds a password.
type CredentialsRejectedError struct {
	Source string        // the credential source, by its redacted name
	Logins int           // logins made by this connect
	For    time.Duration // from the first rejection to the end of the connect
	Server *pgconn.PgError
}

func (e *CredentialsRejectedError) Error() string {
	return fmt.Sprintf("pgsecure: the server rejected the credentials from %s (SQLSTATE %s: %s) for %s, over %d logins "+
		"with the source's newest and previous credentials, until the connect ran out of time (connect_timeout or the "+
		"caller's deadline); the database password and the secret do not agree: set the role's password to the secret's",
		e.Source, e.Server.Code, e.Server.Message, e.For.Round(time.Millisecond), e.Logins)
}

// Unwrap returns ErrCredentialsRejected and the server's error.
func (e *CredentialsRejectedError) Unwrap() []error {
	return []error{shared.ErrCredentialsRejected, e.Server}
}

// TokenRejectedError is the server refusing a login token (RDS IAM, Cloud
// SQL or AlloyDB IAM, Entra ID), also after one retry with a fresh token.
// It names the source and what to check; it never contains the token. It
// wraps the server's error.
type TokenRejectedError struct {
	Source string // the credential source, by its redacted name
	User   string
	Server *pgconn.PgError
}

func (e *TokenRejectedError) Error() string {
	return fmt.Sprintf("pgsecure: the server rejected the login token from %s for user %q (server: %s); "+
		"check that the identity behind the source may log in as this database user (the cloud's IAM permission, "+
		"and the user created for IAM login on the server), that the token is for this host and port, "+
		"and that this machine's clock is right", e.Source, e.User, e.Server.Error())
}

// Unwrap returns the server's error.
func (e *TokenRejectedError) Unwrap() error { return e.Server }
