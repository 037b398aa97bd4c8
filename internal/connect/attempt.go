package connect

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgsecure/pgsecure/verify"
)

// attempt is the state of one TCP connection from dial to report. The dial
// stage creates it; later stages find it under the connection pgx hands
// them (attemptOf) and fill in what they learn, in pipeline order.
type attempt struct {
	host    string // the host name or address the certificate must match
	addr    string // the address dialled
	started time.Time
	ctx     context.Context // the connect's: its deadline is connect_timeout's, its values (a tracer's span) go with the events of later stages
	probe   bool            // a login probe of relogin: a rejection is final

	mu            sync.Mutex
	stage         verify.Stage
	tlsConn       *tls.Conn
	handshakeDone time.Duration
	verified      bool       // local verification passed for host
	watch         *authWatch // set by the local stage, used by BuildFrontend
	watched       bool       // the frontend stage put the watch in front of pgx's frontend
	certAsked     bool       // the server asked for a client certificate in the handshake

	// connected is set once the connection is verified and handed on: from
	// then on the attempt's connection passes errors through unchanged
	// (see guardedConn), so deadlines pgx sets on an established
	// connection stay the net.Error timeouts pgx expects.
	connected atomic.Bool
}

// connectDone ends the attempt: its connection is established. Errors on it
// are no longer attributed to a connect stage.
func (a *attempt) connectDone() { a.connected.Store(true) }

func (a *attempt) setStage(s verify.Stage) {
	a.mu.Lock()
	a.stage = s
	a.mu.Unlock()
}

// Stage is the stage the attempt is in.
func (a *attempt) Stage() verify.Stage {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stage
}

// attemptOf finds the attempt under nc: through *tls.Conn and any wrapper
// that exposes NetConn. A caller's wrapper that hides the connection hides
// the attempt; later stages then fall back to what they can check without
// it (never to nothing).
func attemptOf(nc any) *attempt {
	for range 8 {
		switch c := nc.(type) {
		case *guardedConn:
			return c.attempt
		case *attemptConn:
			return c.attempt
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// attemptConn carries the attempt above a caller's AfterNetConnect wrapper
// that does not expose the connection under it, so later stages still find
// the attempt. (pgx holds the *tls.Conn for channel binding only when no
// wrapper is there, so wrapping it again takes nothing away.)
type attemptConn struct {
	net.Conn
	attempt *attempt
}

// unwatched reports a verified attempt whose authentication watch was not
// put in front of pgx's frontend.
func (a *attempt) unwatched() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.verified && !a.watched
}

type handshakeKey struct{}

// CertificateRequested notes that the server asked for a client
// certificate in the handshake run with ctx (the TLS configuration's
// GetClientCertificate calls it with tls.CertificateRequestInfo.Context).
func CertificateRequested(ctx context.Context) {
	if a, ok := ctx.Value(handshakeKey{}).(*attempt); ok {
		a.mu.Lock()
		a.certAsked = true
		a.mu.Unlock()
	}
}

func (a *attempt) certificateRequested() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.certAsked
}

// tlsConnOf finds the *tls.Conn in nc (itself or under wrappers exposing
// NetConn).
func tlsConnOf(nc any) *tls.Conn {
	for range 8 {
		switch c := nc.(type) {
		case *tls.Conn:
			return c
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// Progress says which host and stage the most recent attempt of this policy
// is in, and for how long it has been running (for a slow start's log).
func (p *Policy) Progress() (host string, stage verify.Stage, elapsed time.Duration, ok bool) {
	a := p.latest.Load()
	if a == nil {
		return "", "", 0, false
	}
	return a.host, a.Stage(), time.Since(a.started), true
}
