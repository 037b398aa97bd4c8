package testutil

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// AnswerN starts a test double standing in for a downgrade attacker, which no
// real server would be: it answers 'N' to every SSLRequest (and
// GSSENCRequest), then acts as a plaintext PostgreSQL server that asks for a
// cleartext password (AuthenticationCleartextPassword), records the
// PasswordMessage (see Passwords) and rejects the login with SQLSTATE 28P01.
// A client that falls back to plaintext (pgx's sslmode=prefer does) hands it
// the password.
func AnswerN(t testing.TB) *Peer {
	t.Helper()
	return newPeer(t, func(p *Peer, c net.Conn) {
		startup, _, err := negotiate(c, false)
		if err == nil {
			p.stealPassword(c, startup)
		}
	})
}

// PlaintextServer starts a test double standing in for a peer that speaks only
// plaintext and ignores the SSLRequest protocol, which no TLS-capable
// PostgreSQL server would be: to an SSLRequest, a GSSENCRequest or anything
// that is not a startup packet (such as a direct TLS ClientHello) it replies
// with a plaintext FATAL ErrorResponse instead of 'S' or 'N'; to a
// StartupMessage it replies AuthenticationCleartextPassword and records the
// password it gets (see Passwords).
func PlaintextServer(t testing.TB) *Peer {
	t.Helper()
	return newPeer(t, func(p *Peer, c net.Conn) {
		for {
			code, payload, err := readStartup(c)
			switch {
			case errors.Is(err, errBadPacket):
				_, _ = c.Write(errorResponse("08P01", "invalid startup packet layout"))
				return
			case err != nil:
				return
			case code == protocolV3:
				p.stealPassword(c, payload)
				return
			default:
				_, _ = c.Write(errorResponse("08P01", "unsupported frontend protocol"))
			}
		}
	})
}

// WireTap starts a test double standing in for an eavesdropper on the
// network path: a transparent TCP relay to upstream that changes nothing and
// records both directions (Wire: client to server, ServerWire: server to
// client), so a test can prove no cleartext secret crossed the wire.
func WireTap(t testing.TB, upstream string) *Peer {
	t.Helper()
	return newPeer(t, func(p *Peer, c net.Conn) {
		up, err := p.dialUpstream(upstream)
		if err != nil {
			return
		}
		defer p.untrack(up)
		p.relay(c, &recordingConn{Conn: up, onRead: func(b []byte) { p.record(&p.serverWire, b) }})
	})
}

// negotiate reads startup packets until a StartupMessage (returned) or, when
// acceptTLS, an SSLRequest (answered 'S', tlsRequested true). GSSENCRequests,
// and SSLRequests when !acceptTLS, are answered 'N'.
func negotiate(c net.Conn, acceptTLS bool) (startup []byte, tlsRequested bool, err error) {
	for {
		code, payload, err := readStartup(c)
		if err != nil {
			return nil, false, err
		}
		switch {
		case code == protocolV3:
			return payload, false, nil
		case code == sslRequestCode && acceptTLS:
			_, err := c.Write([]byte{'S'})
			return nil, true, err
		case code == sslRequestCode || code == gssEncRequestCode:
			if _, err := c.Write([]byte{'N'}); err != nil {
				return nil, false, err
			}
		default:
			_, _ = c.Write(errorResponse("08P01", "unsupported frontend protocol"))
			return nil, false, errBadPacket
		}
	}
}

// stealPassword answers a StartupMessage with AuthenticationCleartextPassword,
// records the password the client sends and rejects the login.
func (p *Peer) stealPassword(c io.ReadWriter, startup []byte) {
	params := parseParams(startup)
	p.recordStartup(params)
	if _, err := c.Write(authCleartextPassword()); err != nil {
		return
	}
	typ, body, err := readMessage(c)
	if err != nil || typ != 'p' {
		return
	}
	p.recordPassword(string(trimNUL(body)))
	_, _ = c.Write(errorResponse("28P01", `password authentication failed for user "`+params["user"]+`"`))
}

// readStartupAndStealPassword reads the StartupMessage (e.g. inside TLS) and
// continues as stealPassword.
func (p *Peer) readStartupAndStealPassword(c io.ReadWriter) {
	code, payload, err := readStartup(c)
	if err != nil || code != protocolV3 {
		return
	}
	p.stealPassword(c, payload)
}

func trimNUL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == 0 {
		return b[:n-1]
	}
	return b
}

// relay copies both directions until either side stops, then closes both.
func (p *Peer) relay(client, upstream net.Conn) {
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		_ = client.Close()
		_ = upstream.Close()
	}
	wg.Add(2)
	go pipe(upstream, client)
	go pipe(client, upstream)
	wg.Wait()
}
