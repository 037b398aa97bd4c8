package testutil

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
)

// CipherSuitePeer starts a test double standing in for a server that
// negotiates a cipher suite crypto/tls lists as insecure (such as an RC4
// suite), which no server configured by this project would: it answers 'S',
// completes a TLS 1.2 handshake offering only suite, then records the
// StartupMessage (see Startups) and asks for a cleartext password. Go's TLS
// client negotiates such a suite only when its configuration lists it.
func CipherSuitePeer(t testing.TB, cert tls.Certificate, suite uint16) *Peer {
	t.Helper()
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS12, // TLS 1.3 suites are not configurable
		CipherSuites: []uint16{suite},  // deliberately insecure: that is this peer's purpose
	}
	return newPeer(t, func(p *Peer, c net.Conn) {
		if dc, ok := p.negotiateTLS(c, cfg); ok {
			p.readStartupAndStealPassword(dc)
		}
	})
}

// PreAuthPeer starts a test double standing in for a hostile server holding
// a certificate the client trusts, which no real PostgreSQL server would be:
// it answers 'S', completes TLS with cert, records the StartupMessage (see
// Startups) and lets before write to the client whatever a hostile server
// might send before any authentication request (an endless stream of
// ParameterStatus messages, a huge NoticeResponse). When before returns nil
// it asks for a cleartext password, records it (see Passwords) and rejects
// the login; when before fails (the client hung up) it stops.
func PreAuthPeer(t testing.TB, cert tls.Certificate, before func(w io.Writer) error) *Peer {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return newPeer(t, func(p *Peer, c net.Conn) {
		dc, ok := p.negotiateTLS(c, cfg)
		if !ok {
			return
		}
		code, payload, err := readStartup(dc)
		if err != nil || code != protocolV3 {
			return
		}
		if before(dc) != nil {
			p.recordStartup(parseParams(payload))
			return
		}
		p.stealPassword(dc, payload)
	})
}

// Message encodes one typed protocol message (type byte, length, body), for
// the scripts of test doubles such as PreAuthPeer.
func Message(typ byte, body []byte) []byte { return message(typ, body) }
