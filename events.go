package pgsecure

import (
	"context"
	"time"

	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/pool"
	"github.com/pgsecure/pgsecure/verify"
)

// EventKind says what an Event reports (Event.Kind), for a label or a log
// field; a type switch on the Event gives its fields.
type EventKind int

const (
	// EventConnectionVerified: a ConnectionVerified.
	EventConnectionVerified EventKind = iota + 1
	// EventConnectionRefused: a ConnectionRefused.
	EventConnectionRefused
	// EventSecretFetched: a SecretFetched.
	EventSecretFetched
	// EventSecretFailed: a SecretFailed.
	EventSecretFailed
	// EventCertificateExpiring: a CertificateExpiring.
	EventCertificateExpiring
	// EventLoginFailed: a LoginFailed.
	EventLoginFailed
)

func (k EventKind) String() string {
	switch k {
	case EventConnectionVerified:
		return "connection_verified"
	case EventConnectionRefused:
		return "connection_refused"
	case EventSecretFetched:
		return "secret_fetched"
	case EventSecretFailed:
		return "secret_failed"
	case EventCertificateExpiring:
		return "certificate_expiring"
	case EventLoginFailed:
		return "login_failed"
	}
	return "unknown"
}

// RefusalKind classifies a refused connection (ConnectionRefused.Refusal),
// for counting refusals by cause.
type RefusalKind string

// Every refusal has exactly one of these kinds.
const (
	// RefusedPlaintext: there would have been no TLS (a server answering
	// 'N', a plaintext server, a removed TLS configuration).
	RefusedPlaintext = RefusalKind(connect.RefusedPlaintext)
	// RefusedTLS: the TLS handshake failed, or its version or ALPN is below
	// the policy.
	RefusedTLS = RefusalKind(connect.RefusedTLS)
	// RefusedCertificate: the server certificate failed verification
	// (chain, host name, key usage, pin).
	RefusedCertificate = RefusalKind(connect.RefusedCertificate)
	// RefusedAuthMethod: the server asked for an authentication method the
	// policy does not allow (md5, password, trust, ...), could not bind
	// SCRAM to the channel under channel_binding=require, or sent before
	// authentication what PostgreSQL never sends there.
	RefusedAuthMethod = RefusalKind(connect.RefusedAuthMethod)
	// RefusedServerProof: the server says the session is not encrypted
	// (TLS ends before it).
	RefusedServerProof = RefusalKind(connect.RefusedServerProof)
	// RefusedConfiguration: a hook weakened the configuration.
	RefusedConfiguration = RefusalKind(connect.RefusedConfiguration)
)

// Event is what pgsecure reports to an OnEvent callback, for services that
// count refusals, failed logins or expiring certificates in their own
// metrics or traces. It is one of ConnectionVerified, ConnectionRefused,
// LoginFailed, SecretFetched, SecretFailed and CertificateExpiring (a type
// switch gives the fields); later versions may add kinds, which a switch
// should ignore. No event carries a secret.
type Event interface {
	// Kind says which of the event types this is.
	Kind() EventKind
	event()
}

// ConnectionVerified: a new connection passed both checks (the TLS
// verification before any credential, then the server's proof).
type ConnectionVerified struct {
	Time time.Time
	// Host is the server's host name.
	Host string
	// Report describes the connection, as ConnReport and ReportOf
	// give it afterwards.
	Report verify.Report
	// Handshake is the time from the TCP connection to a verified TLS
	// handshake; ServerCheck the time the server query took (zero when
	// Report.Proof is channel binding: no query was made).
	Handshake, ServerCheck time.Duration
}

// ConnectionRefused: pgsecure refused a new connection.
type ConnectionRefused struct {
	Time time.Time
	// Host is the server's host name.
	Host string
	// Refusal says which kind of check refused it, Stage at which stage of
	// the connection.
	Refusal RefusalKind
	Stage   Stage
	// Err is the refusal, as the connect returns it.
	Err error
}

// LoginFailed: the server rejected the login of a new connection
// (SQLSTATE 28P01: wrong password or user; 28000: no pg_hba.conf entry
// allows it, or another authorization failure). It is reported once per
// connect, with the final outcome: a rejection that pgsecure retried with
// fresh credentials and that then succeeded is not a failed login.
type LoginFailed struct {
	Time time.Time
	// Host is the server's host name, User the role that tried to log in.
	Host, User string
	// SQLState is the server's code (28P01 or 28000).
	SQLState string
	// Source names the credential source (empty: the connection string).
	Source string
	// Err is the connect's error; errors.As finds the server's
	// *pgconn.PgError in it.
	Err error
}

// SecretFetched: credentials of a new generation were fetched.
type SecretFetched struct {
	Time time.Time
	// Source names the credential source.
	Source string
	// Expires is when the credentials expire (zero: no expiry).
	Expires time.Time
}

// SecretFailed: fetching credentials failed.
type SecretFailed struct {
	Time time.Time
	// Source names the credential source.
	Source string
	// Err says why.
	Err error
}

// CertificateExpiring: a certificate expires within the warning threshold
// (Builder.ExpiryWarning); reported once per certificate per pool.
type CertificateExpiring struct {
	Time time.Time
	// Role is "server" or "client".
	Role string
	// Report describes the connection on which the certificate was seen.
	Report verify.Report
	// Certificate is the expiring certificate, DaysLeft its days left.
	Certificate verify.Certificate
	DaysLeft    int
}

func (ConnectionVerified) Kind() EventKind  { return EventConnectionVerified }
func (ConnectionRefused) Kind() EventKind   { return EventConnectionRefused }
func (LoginFailed) Kind() EventKind         { return EventLoginFailed }
func (SecretFetched) Kind() EventKind       { return EventSecretFetched }
func (SecretFailed) Kind() EventKind        { return EventSecretFailed }
func (CertificateExpiring) Kind() EventKind { return EventCertificateExpiring }

func (ConnectionVerified) event()  {}
func (ConnectionRefused) event()   {}
func (LoginFailed) event()         {}
func (SecretFetched) event()       {}
func (SecretFailed) event()        {}
func (CertificateExpiring) event() {}

// eventSink is the callbacks of one pool, copied from its Builder when the
// pool's configuration was made.
type eventSink struct {
	fns []func(context.Context, Event)
}

func (s *eventSink) emit(ctx context.Context, ev Event) {
	if s == nil {
		return
	}
	for _, fn := range s.fns {
		fn(ctx, ev)
	}
}

// The pool's events, as the public structs (eventSink is its pool.Events).

func (s *eventSink) ConnectionVerified(ctx context.Context, r verify.Report, t connect.Timings) {
	s.emit(ctx, ConnectionVerified{Time: time.Now(), Report: r, Host: r.ServerName, Handshake: t.Handshake, ServerCheck: t.ServerCheck})
}

func (s *eventSink) ConnectionRefused(ctx context.Context, r connect.Refusal) {
	s.emit(ctx, ConnectionRefused{Time: time.Now(), Refusal: RefusalKind(r.Kind), Host: r.Host, Stage: r.Stage, Err: r.Err})
}

func (s *eventSink) LoginFailed(ctx context.Context, f pool.LoginFailure) {
	s.emit(ctx, LoginFailed{Time: f.Time, Host: f.Host, User: f.User, SQLState: f.SQLState, Source: f.Source, Err: f.Err})
}

func (s *eventSink) CertificateExpiring(ctx context.Context, role string, r verify.Report, c verify.Certificate, daysLeft int) {
	s.emit(ctx, CertificateExpiring{Time: time.Now(), Role: role, Report: r, Certificate: c, DaysLeft: daysLeft})
}

func (s *eventSink) SecretFetched(ctx context.Context, source string, expires time.Time) {
	s.emit(ctx, SecretFetched{Time: time.Now(), Source: source, Expires: expires})
}

func (s *eventSink) SecretFailed(ctx context.Context, source string, err error) {
	s.emit(ctx, SecretFailed{Time: time.Now(), Source: source, Err: err})
}
