package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgsecure/pgsecure/verify"
)

// Policy is what every connection of one pool is checked against. The root
// package builds it once per pool; it is read-only afterwards.
type Policy struct {
	// TLS builds per-host TLS configurations and verifies server chains.
	TLS TLS
	// MinVersion is the lowest TLS version accepted.
	MinVersion uint16
	// Direct is sslnegotiation=direct: TLS from the first byte, ALPN
	// "postgresql" required.
	Direct bool
	// Auth is the set of authentication methods allowed.
	Auth AuthPolicy
	// Credentials, when set, is told about rejected credentials (it may
	// supply fresh ones for one retry).
	Credentials Credentials
	// QueryEveryConnection makes the server-side proof always query the
	// server, even when channel binding already proved the same.
	QueryEveryConnection bool
	// HostAddrs maps a host name to the address to dial instead of resolving
	// it (libpq's hostaddr); the certificate is still checked against the
	// host name.
	HostAddrs map[string]string
	// Observer is told about every verified and refused connection.
	Observer Observer

	latest atomic.Pointer[attempt] // the most recent attempt, for Progress
}

// TLS is the certificate policy (implemented in the root package).
type TLS interface {
	// ConfigFor returns the tls.Config for one host.
	ConfigFor(host string) *tls.Config
	// VerifyPeer verifies a server chain (leaf first) for host: pinned
	// roots, validity, key usage, libpq host name rules, pins.
	VerifyPeer(host string, chain []*x509.Certificate) error
	// ClientLeaf is the client certificate currently presented, if any.
	ClientLeaf() *x509.Certificate
}

// Credentials is the credential source's side of the pipeline.
type Credentials interface {
	// Rejected is called when the server refused user/password with
	// SQLSTATE code (28P01, or 28000 from a proxy). It returns fresh
	// credentials to retry with (RetryFresh); RetryLater when the source
	// has nothing newer yet but logging in again may help (the pipeline
	// then tries Candidates with backoff until connect_timeout); or
	// RetryNone (the code is not a credential rejection for this source, or
	// user/password came from a retry already).
	Rejected(ctx context.Context, code, user, password string) (fresh Login, verdict Retry)
	// Candidates returns what to log in with after user/password were
	// rejected and the source had nothing newer: first the source's
	// current credentials (read again; when they differ from user/password
	// they are newer), then earlier generations the database may still
	// accept, newest first.
	Candidates(ctx context.Context, user, password string) []Login
	// Retrying is told that user/password (one of Candidates) are handed
	// to pgx's retry: a rejection of the retry is final (Rejected answers
	// RetryNone).
	Retrying(user, password string)
	// Name names the source in errors (redacted).
	Name() string
	// Expiry is when the credentials user/password stop working (zero:
	// unknown or never).
	Expiry(user, password string) time.Time
	// LoginToken reports whether password is a login token the source
	// handed out for user (secrets.Credentials.LoginToken): only then may
	// it answer a request for a cleartext password, over verified TLS.
	// source names the credential source, for errors.
	LoginToken(user, password string) (source string, ok bool)
}

// Retry is what to do after a credential rejection.
type Retry int

// What Credentials.Rejected may answer.
const (
	RetryNone  Retry = iota // the server's error stands
	RetryFresh              // retry once with the fresh credentials
	RetryLater              // nothing newer yet: log in again with backoff (relogin.go)
)

// Observer receives the outcome of every connection attempt.
type Observer interface {
	Verified(ctx context.Context, r verify.Report, t Timings)
	Refused(ctx context.Context, r Refusal)
	// LoginFailed is told of a login the server rejected (SQLSTATE 28P01
	// or 28000) that ends the attempt: not one that a retry with fresh
	// credentials follows, nor relogin's probes.
	LoginFailed(ctx context.Context, f LoginFailure)
}

// LoginFailure is one failed login.
type LoginFailure struct {
	Host, Addr, User string
	Server           *pgconn.PgError // the server's rejection
	Err              error           // what the connect returns for it (Server, or a typed error wrapping it)
}

// Timings says how long the stages of a verified connection took.
type Timings struct {
	// Handshake is from the TCP connection to the verified TLS handshake.
	Handshake time.Duration
	// ServerCheck is the server-side proof (zero when channel binding
	// proved it during authentication).
	ServerCheck time.Duration
}

// RefusalKind classifies a refused connection.
type RefusalKind string

// Refusal kinds, one per way a connection can fail pgsecure's checks.
const (
	RefusedPlaintext     RefusalKind = "plaintext"     // no TLS: 'N', a plaintext server, a removed TLS configuration
	RefusedTLS           RefusalKind = "tls"           // handshake failed; version, cipher suite, group or ALPN below policy
	RefusedCertificate   RefusalKind = "certificate"   // chain, host name, key usage, pin or revocation
	RefusedAuthMethod    RefusalKind = "auth_method"   // md5, password, trust, ... not allowed; unbound SCRAM under channel_binding=require; pre-auth traffic libpq refuses
	RefusedServerProof   RefusalKind = "server_proof"  // the server says the session is not encrypted
	RefusedConfiguration RefusalKind = "configuration" // a hook weakened the configuration
)

// Refusal describes one refused connection attempt.
type Refusal struct {
	Kind  RefusalKind
	Host  string // as given in the configuration
	Addr  string // dialled address, when known
	Stage verify.Stage
	Err   error
}

// The refusals the pipeline returns whose types live in package verify,
// where callers can reach them.
type (
	TimeoutError                   = verify.TimeoutError
	ClientCertificateRequiredError = verify.ClientCertificateRequiredError
)
