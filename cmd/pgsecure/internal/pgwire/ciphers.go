package pgwire

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// WeakCipherSuites are the TLS 1.2 suites Go's crypto/tls classifies as
// insecure (tls.InsecureCipherSuites: RC4, 3DES, and CBC with SHA-256 MACs,
// which are open to Lucky13-style timing attacks).
func WeakCipherSuites() []uint16 {
	var ids []uint16
	for _, s := range tls.InsecureCipherSuites() {
		if supportsTLS12(s) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func supportsTLS12(s *tls.CipherSuite) bool {
	for _, v := range s.SupportedVersions {
		if v == tls.VersionTLS12 {
			return true
		}
	}
	return false
}

// AcceptedCipherSuite asks the PostgreSQL server at addr for TLS and offers
// a TLS 1.2 handshake with only suites. It returns the suite the server
// chose, or 0 when the server refused every one of them. See TLSHandshake.
func AcceptedCipherSuite(ctx context.Context, addr string, suites []uint16) (uint16, error) {
	st, ok, err := TLSHandshake(ctx, addr, tls.VersionTLS12, tls.VersionTLS12, suites)
	if !ok {
		return 0, err
	}
	return st.CipherSuite, nil
}

// TLSHandshake asks the PostgreSQL server at addr for TLS (SSLRequest) and
// offers a handshake limited to versions minVersion..maxVersion and, when
// not nil, to suites. ok is false when the server refused the offer (a TLS
// alert). The connection is closed right after the handshake: nothing else
// is sent, so the server's certificate is not verified (the probe learns only
// what the server is willing to negotiate). Other failures (network, a
// server without TLS) are errors.
func TLSHandshake(ctx context.Context, addr string, minVersion, maxVersion uint16, suites []uint16) (st tls.ConnectionState, ok bool, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return st, false, fmt.Errorf("cannot connect to %s: %w", addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:], 8)
	binary.BigEndian.PutUint32(req[4:], 80877103) // SSLRequest code
	if _, err := conn.Write(req[:]); err != nil {
		return st, false, fmt.Errorf("sending SSLRequest to %s: %w", addr, err)
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return st, false, fmt.Errorf("reading the SSLRequest answer of %s: %w", addr, err)
	}
	if answer[0] != 'S' {
		return st, false, fmt.Errorf("%s answered %q to SSLRequest: it does not offer TLS", addr, answer[0])
	}
	tc := tls.Client(conn, &tls.Config{
		// Inspection only, see the doc comment: no data follows the handshake.
		InsecureSkipVerify: true, //nolint:gosec
		MinVersion:         minVersion,
		MaxVersion:         maxVersion,
		CipherSuites:       suites,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "remote error" {
			return st, false, nil
		}
		return st, false, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc.ConnectionState(), true, nil
}
