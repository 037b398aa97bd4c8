package pgsecure

import (
	"time"

	"github.com/pgsecure/pgsecure/verify"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventConnectionVerified: a new connection passed both checks.
	EventConnectionVerified EventKind = iota + 1
	// EventConnectionRefused: a new connection was refused (Err says why).
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

// Event is what pgsecure reports to an OnEvent callback, for services that
// count refusals or expiring certificates in their own metrics. It never
// carries a secret.
type Event struct {
	Kind EventKind
	Time time.Time
	// Report describes the connection (verified, certificate expiring).
	Report *verify.Report
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
