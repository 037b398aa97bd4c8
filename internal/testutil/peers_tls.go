package testutil

import (
	"crypto/tls"
	"net"
	"testing"
)

// TLSPeer starts a test double that answers 'S' to an SSLRequest and completes
// TLS with cert, standing in for a server no honest deployment would present:
//
//   - upstream == "": after TLS it asks for a cleartext password and records
//     it (see Passwords): a server with a certificate from another CA or for
//     another host.
//   - upstreamTLS == nil: it relays the decrypted stream to upstream (a real
//     PostgreSQL address) in plaintext: a TLS-terminating proxy in front of a
//     plaintext server, where pg_stat_ssl on the server reports ssl=false.
//   - upstreamTLS != nil: it opens its own TLS session to upstream (SSLRequest
//     then TLS with upstreamTLS) and relays: a MITM re-terminating TLS.
//
// A client that skips TLS is asked for its password in plaintext. Decrypted
// holds what the client sent inside TLS.
func TLSPeer(t testing.TB, cert tls.Certificate, upstream string, upstreamTLS *tls.Config) *Peer {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return newPeer(t, func(p *Peer, c net.Conn) {
		dc, ok := p.negotiateTLS(c, cfg)
		if !ok {
			return
		}
		if upstream == "" {
			p.readStartupAndStealPassword(dc)
			return
		}
		up, err := p.dialUpstream(upstream)
		if err != nil {
			return
		}
		defer p.untrack(up)
		if upstreamTLS != nil {
			tc, err := startTLSClient(up, upstreamTLS.Clone())
			if err != nil {
				return
			}
			up = tc
		}
		p.relay(dc, up)
	})
}

// ALPNPeer starts a test double standing in for a direct-TLS server
// (sslnegotiation=direct) that does not honour the PostgreSQL ALPN contract:
// it starts the TLS handshake immediately (no SSLRequest), offers alpn (nil:
// no ALPN at all, so the client negotiates none), then records the
// StartupMessage (see Startups) and asks for a cleartext password. Go's TLS
// server aborts the handshake when the client's ALPN list and alpn share no
// protocol, so a "wrong protocol" peer cannot complete a handshake.
func ALPNPeer(t testing.TB, cert tls.Certificate, alpn []string) *Peer {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: alpn}
	return newPeer(t, func(p *Peer, c net.Conn) {
		if dc, err := p.serveTLS(c, cfg); err == nil {
			p.readStartupAndStealPassword(dc)
		}
	})
}

// TLSVersionPeer starts a test double standing in for an outdated server: it
// answers 'S' and completes TLS capped at version max (a tls.VersionTLS*
// constant; it accepts versions down to TLS 1.0), then asks for a cleartext
// password and records it. A client that skips TLS is asked in plaintext.
func TLSVersionPeer(t testing.TB, cert tls.Certificate, max uint16) *Peer {
	t.Helper()
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS10, // deliberately outdated: that is this peer's purpose
		MaxVersion:   max,
	}
	return newPeer(t, func(p *Peer, c net.Conn) {
		if dc, ok := p.negotiateTLS(c, cfg); ok {
			p.readStartupAndStealPassword(dc)
		}
	})
}

// negotiateTLS accepts an SSLRequest and completes TLS with cfg, returning the
// decrypted connection. A client that sends a plaintext StartupMessage instead
// is asked for its password in plaintext, and ok is false.
func (p *Peer) negotiateTLS(c net.Conn, cfg *tls.Config) (dc net.Conn, ok bool) {
	startup, tlsRequested, err := negotiate(c, true)
	if err != nil {
		return nil, false
	}
	if !tlsRequested {
		p.stealPassword(c, startup)
		return nil, false
	}
	dc, err = p.serveTLS(c, cfg)
	return dc, err == nil
}

// serveTLS completes a TLS server handshake on c and returns a connection
// whose reads are recorded into Decrypted.
func (p *Peer) serveTLS(c net.Conn, cfg *tls.Config) (net.Conn, error) {
	tc := tls.Server(c, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	return &recordingConn{Conn: tc, onRead: func(b []byte) { p.record(&p.decrypted, b) }}, nil
}
