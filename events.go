package pgsecure

import (
	"time"

	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/verify"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventConnectionVerified: a new connection passed both checks.
	EventConnectionVerified EventKind = iota + 1
	// EventConnectionRefused: a new connection was refused (Refusal says
	// which kind of check refused it, Err why).
	EventConnectionRefused
	// EventSecretFetched: credentials of a new generation were fetched.
	EventSecretFetched
	// EventSecretFailed: fetching credentials failed (Err says why).
	EventSecretFailed
	// EventCertificateExpiring: a certificate expires within the warning
	// threshold (once per certificate per pool).
	EventCertificateExpiring
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
	}
	return "unknown"
}

// RefusalKind classifies a refused connection (Event.Refusal), for
// counting refusals by cause.
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
// count refusals or expiring certificates in their own metrics. It never
// carries a secret. Which fields are set depends on Kind, as documented on
// each field.
type Event struct {
	Kind EventKind
	Time time.Time
	// Host is the server's host name (connection events).
	Host string
	// Report describes the connection (verified, certificate expiring).
	Report *verify.Report
	// Handshake is the time from TCP connect to a verified TLS handshake;
	// ServerCheck the time the server-side query took (zero when channel
	// binding proved it). Set on EventConnectionVerified.
	Handshake, ServerCheck time.Duration
	// Refusal and Stage say which check refused a connection and at which
	// stage of it (EventConnectionRefused).
	Refusal RefusalKind
	Stage   string
	// Err is the refusal or failure (refused, secret failed).
	Err error
	// Source names the credential source (secret events).
	Source string
	// Expires is when fetched credentials expire (zero: no expiry).
	Expires time.Time
	// Certificate and DaysLeft describe an expiring certificate.
	Certificate *verify.Certificate
	DaysLeft    int
}

type eventSink struct {
	fns []func(Event)
}

func (s *eventSink) emit(ev Event) {
	if s == nil || len(s.fns) == 0 {
		return
	}
	ev.Time = time.Now()
	for _, fn := range s.fns {
		fn(ev)
	}
}
