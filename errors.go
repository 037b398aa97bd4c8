package pgsecure

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
type CredentialsRejectedError = verify.CredentialsRejectedError

// ErrKeyPassphrase is wrapped by the error returned when an encrypted private
// key cannot be decrypted with the passphrase given (sslpassword or
// ClientKeyPassphrase). The message names the key file but never contains
// the passphrase or any key material.
var ErrKeyPassphrase = shared.ErrKeyPassphrase

// ErrInsecureAuth is wrapped when the server asks for an authentication
// method the policy does not allow (by default anything but
// scram-sha-256), when channel binding is required and the exchange cannot
// be bound (no SCRAM-SHA-256-PLUS), or when the server sends before
// authentication a message PostgreSQL never sends there or one larger than
// libpq accepts: the connection is closed before the password, or a hash
// of it (or an unbound SCRAM proof), is sent.
var ErrInsecureAuth = connect.ErrInsecureAuth

// TokenRejectedError is returned when the server refuses a login token
// (secrets.Credentials.LoginToken), also after one retry with a fresh one:
// it names the source and what to check, never the token, and wraps the
// server's *pgconn.PgError.
type TokenRejectedError = verify.TokenRejectedError

// Stage is a step of one connection attempt (see verify.Stage): errors,
// events and the pgsecure command name stages with its values.
type Stage = verify.Stage

// The stages of one connection attempt, in order (see verify.Stage).
const (
	StageConfig       = verify.StageConfig
	StageTCP          = verify.StageTCP
	StageTLSRequest   = verify.StageTLSRequest
	StageTLSHandshake = verify.StageTLSHandshake
	StageAuth         = verify.StageAuth
	StageServerCheck  = verify.StageServerCheck
)

// ConnectError is Build's error when its first connection is refused: where
// (host, port, user, database), what went wrong, at which stage, and what to
// do about it, composed once from the typed errors underneath. Its message
// reads
//
//	pgsecure: HOST:PORT (user USER, database DB): PROBLEM; stage: STAGE; fix: FIX
//
// It wraps the whole chain it was composed from, so errors.Is and errors.As
// still reach pgx's *pgconn.ConnectError and, under it, *CertificateError,
// *verify.Error, *TimeoutError, *AuthMethodError,
// *ClientCertificateRequiredError, the server's *pgconn.PgError and the
// sentinels (ErrNotEncrypted, ErrUntrustedServer, ErrInsecureAuth, ...).
// It never contains a password.
type ConnectError struct {
	// Host and Port are the server as configured (the host name the
	// certificate must name, not the address it resolved to).
	Host string
	Port uint16
	// User and Database are the login's.
	User, Database string
	// Stage is the stage the attempt failed in ("" when not known).
	Stage Stage
	// Problem says what went wrong; Fix what to do ("" when there is no
	// general advice, e.g. a refused TCP connection).
	Problem, Fix string
	// Err is the error the message was composed from.
	Err error
}

func (e *ConnectError) Error() string {
	var b strings.Builder
	b.WriteString("pgsecure: ")
	b.WriteString(net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))))
	fmt.Fprintf(&b, " (user %s, database %s): %s", e.User, e.Database, e.Problem)
	if e.Stage != "" {
		b.WriteString("; stage: " + string(e.Stage))
	}
	if e.Fix != "" {
		b.WriteString("; fix: " + e.Fix)
	}
	return b.String()
}

// Unwrap returns the error the message was composed from.
func (e *ConnectError) Unwrap() error { return e.Err }

// loginOrigin says where the password of a login came from, for the fix of
// a rejected password.
type loginOrigin struct {
	password string // "the password in the connection string", ...
}

// connectError composes Build's error for a refused first connection. cc
// is the configuration the pool was built from; origin says where its
// password came from.
func connectError(err error, cc *pgx.ConnConfig, origin loginOrigin) error {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return err
	}
	e := &ConnectError{Host: cc.Host, Port: cc.Port, User: cc.User, Database: cc.Database, Err: err}
	var pgxErr *pgconn.ConnectError
	if errors.As(err, &pgxErr) && pgxErr.Config != nil {
		e.Host, e.Port, e.User, e.Database = pgxErr.Config.Host, pgxErr.Config.Port, pgxErr.Config.User, pgxErr.Config.Database
	}
	if e.Database == "" {
		e.Database = e.User // the server's default, as libpq's
	}
	causes := attemptErrors(err)
	if len(causes) == 1 {
		e.Stage, e.Problem, e.Fix = describe(causes[0], e, origin)
		return e
	}
	// Several hosts (or addresses) were tried: each one's problem, in order.
	var problems, fixes []string
	for _, c := range causes {
		stage, problem, fix := describe(c, e, origin)
		if addr := addrOf(c); addr != "" {
			problem = addr + ": " + problem
		}
		if stage != "" {
			problem += " (" + string(stage) + ")"
		}
		problems = append(problems, problem)
		if fix != "" && !contains(fixes, fix) {
			fixes = append(fixes, fix)
		}
	}
	e.Problem = fmt.Sprintf("no host accepted the connection (%d attempts): %s", len(causes), strings.Join(problems, "; "))
	e.Fix = strings.Join(fixes, "; ")
	return e
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// attemptErrors returns the cause of each attempt pgx made: under
// *pgconn.ConnectError, one error per host and address (joined when there
// were several), each wrapping pgx's description of the step that failed
// ("AfterNetConnect failed: ...") around the cause.
func attemptErrors(err error) []error {
	var pgxErr *pgconn.ConnectError
	if !errors.As(err, &pgxErr) {
		return []error{err}
	}
	inner := pgxErr.Unwrap()
	var attempts []error
	if j, ok := inner.(interface{ Unwrap() []error }); ok {
		attempts = j.Unwrap()
	} else {
		attempts = []error{inner}
	}
	out := make([]error, 0, len(attempts))
	for _, a := range attempts {
		out = append(out, cause(a))
	}
	return out
}

// cause returns the error under pgx's per-attempt wrapping: the first error
// in the chain of a that is one of pgsecure's typed errors or the server's,
// else the innermost error pgx wrapped.
func cause(a error) error {
	for e := a; e != nil; e = errors.Unwrap(e) {
		if typed(e) {
			return e
		}
	}
	// pgx wraps the cause twice: "ADDR (HOST): " and "STEP: ".
	if e := errors.Unwrap(a); e != nil {
		if e2 := errors.Unwrap(e); e2 != nil {
			return e2
		}
		return e
	}
	return a
}

func typed(e error) bool {
	switch e.(type) {
	case *ConfigError, *CertificateError, *verify.Error, *TimeoutError, *AuthMethodError,
		*ClientCertificateRequiredError, *TokenRejectedError, *CredentialsRejectedError, *pgconn.PgError:
		return true
	}
	return false
}

// addrOf is the address a typed cause names, if any.
func addrOf(err error) string {
	var (
		verr *verify.Error
		te   *TimeoutError
		ce   *CertificateError
	)
	switch {
	case errors.As(err, &te):
		return te.Addr
	case errors.As(err, &verr):
		return verr.Addr
	case errors.As(err, &ce):
		return ce.Host
	}
	return ""
}

// describe returns the stage, problem and fix of one attempt's cause.
func describe(err error, e *ConnectError, origin loginOrigin) (Stage, string, string) {
	var (
		cfg     *ConfigError
		cert    *CertificateError
		te      *TimeoutError
		auth    *AuthMethodError
		ccr     *ClientCertificateRequiredError
		tok     *TokenRejectedError
		rej     *CredentialsRejectedError
		verr    *verify.Error
		pgErr   *pgconn.PgError
		opErr   *net.OpError
		dnsErr  *net.DNSError
		problem string
	)
	switch {
	case errors.As(err, &cfg):
		problem = cfg.Setting
		if cfg.From != "" {
			problem += " (from " + cfg.From + ")"
		}
		problem += ": " + cfg.Problem
		if cfg.Err != nil {
			problem += ": " + cfg.Err.Error()
		}
		return StageConfig, problem, cfg.Fix
	case errors.As(err, &cert):
		problem = "server certificate refused: " + cert.Problem
		if cert.Err != nil {
			problem += " (" + cert.Err.Error() + ")"
		}
		return StageTLSHandshake, problem, cert.Fix
	case errors.As(err, &te):
		fix := te.Hint()
		if fix != "" {
			fix += "; "
		}
		return te.Stage, fmt.Sprintf("timed out after %s", te.Elapsed.Round(time.Millisecond)),
			fix + "connect_timeout limits each host's attempt (pgsecure's default: DefaultConnectTimeout); raise it if the server is slow to answer"
	case errors.As(err, &auth):
		return StageAuth, auth.Problem, auth.Fix
	case errors.As(err, &ccr):
		return StageAuth, ccr.Problem(), ccr.Fix()
	case errors.As(err, &tok):
		return StageAuth, fmt.Sprintf("the server rejected the login token from %s (server: %s, SQLSTATE %s)", tok.Source, tok.Server.Message, tok.Server.Code),
			"check that the identity behind the source may log in as this database user (the cloud's IAM permission, " +
				"and the user created for IAM login on the server), that the token is for this host and port, " +
				"and that this machine's clock is right"
	case errors.As(err, &rej):
		return StageAuth, fmt.Sprintf("the server rejected the password (SQLSTATE %s: %s) for %s, over %d logins with the newest and "+
				"previous credentials of %s, until the connect ran out of time", rej.Server.Code, rej.Server.Message, rej.For.Round(time.Millisecond), rej.Logins, rej.Source),
			fmt.Sprintf("the database password and the secret do not agree: set the password of user %q to the one %s holds, or correct the secret", e.User, rej.Source)
	case errors.As(err, &verr):
		problem = verr.Seen
		if verr.Err != nil {
			problem += ": " + verr.Err.Error()
		}
		return verr.Stage, problem, verifyFix(verr)
	case errors.As(err, &pgErr):
		return serverRefusal(pgErr, e, origin)
	case errors.As(err, &dnsErr):
		return StageTCP, err.Error(), "check the host name"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return StageTCP, err.Error(), "check the host and port, and that the server is running and listens on this address (listen_addresses)"
	}
	return "", err.Error(), ""
}

// verifyFix is the fix for a refusal the pipeline saw, by stage.
func verifyFix(verr *verify.Error) string {
	switch verr.Stage {
	case StageTLSRequest:
		return "enable ssl on the server (ssl = on, with ssl_cert_file and ssl_key_file, in postgresql.conf), and check that nothing in between strips TLS"
	case StageServerCheck:
		return "connect to the PostgreSQL server itself (not through a proxy or pooler that terminates TLS), or check the server's ssl settings"
	}
	return ""
}

// serverRefusal describes the server's ErrorResponse to a login, by
// SQLSTATE.
func serverRefusal(pgErr *pgconn.PgError, e *ConnectError, origin loginOrigin) (Stage, string, string) {
	switch {
	case pgErr.Code == "28P01":
		return StageAuth, fmt.Sprintf("the server rejected the password (SQLSTATE 28P01: %s)", pgErr.Message),
			fmt.Sprintf("check %s for user %q: it must be the role's password on this server (a password rotated in the database "+
				"before the secret holding it fails like this)", origin.password, e.User)
	case pgErr.Code == "28000":
		return StageAuth, fmt.Sprintf("the server refused the login (SQLSTATE 28000: %s)", pgErr.Message),
			fmt.Sprintf("pg_hba.conf has no line letting user %q into database %q from this client's address over TLS, or the role "+
				"does not exist: add a line such as \"hostssl %s %s CLIENT_ADDRESS/32 scram-sha-256\" (CLIENT_ADDRESS is this "+
				"client's address as the server sees it) and reload the server, or create the role",
				e.User, e.Database, e.Database, e.User)
	case pgErr.Code == "3D000":
		return StageAuth, fmt.Sprintf("the server has no database %q (SQLSTATE 3D000)", e.Database),
			"check dbname in the connection string (or PGDATABASE), or create the database"
	case pgErr.Code == "42501":
		return StageAuth, fmt.Sprintf("the server refused the login (SQLSTATE 42501: %s)", pgErr.Message),
			fmt.Sprintf("grant user %q CONNECT on database %q (and LOGIN to the role)", e.User, e.Database)
	case strings.HasPrefix(pgErr.Code, "28"):
		return StageAuth, fmt.Sprintf("the server refused the login (SQLSTATE %s: %s)", pgErr.Code, pgErr.Message), ""
	case strings.HasPrefix(pgErr.Code, "57P"), strings.HasPrefix(pgErr.Code, "53"):
		return StageAuth, fmt.Sprintf("the server cannot accept connections now (SQLSTATE %s: %s)", pgErr.Code, pgErr.Message),
			"retry later; the server is starting, shutting down or out of connections"
	}
	return "", fmt.Sprintf("the server answered with an error (SQLSTATE %s: %s)", pgErr.Code, pgErr.Message), ""
}
