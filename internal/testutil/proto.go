package testutil

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// Startup packet codes of the PostgreSQL frontend/backend protocol.
const (
	protocolV3        = 3 << 16         // StartupMessage, protocol 3.0 (minor version 0)
	sslRequestCode    = 1234<<16 | 5679 // SSLRequest
	gssEncRequestCode = 1234<<16 | 5680 // GSSENCRequest
	maxStartupLen     = 10000
	maxMessageLen     = 1 << 20
)

var errBadPacket = errors.New("not a PostgreSQL startup packet")

// readStartup reads one untyped startup-phase packet and returns its code and
// the rest of its payload.
func readStartup(r io.Reader) (code uint32, payload []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 8 || n > maxStartupLen {
		return 0, nil, fmt.Errorf("%w (length %d)", errBadPacket, n)
	}
	if _, err := io.ReadFull(r, hdr[4:]); err != nil {
		return 0, nil, err
	}
	payload = make([]byte, n-8)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return binary.BigEndian.Uint32(hdr[4:]), payload, nil
}

// readMessage reads one typed message and returns its type and body.
func readMessage(r io.Reader) (typ byte, body []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > maxMessageLen {
		return 0, nil, fmt.Errorf("bad message length %d", n)
	}
	body = make([]byte, n-4)
	_, err = io.ReadFull(r, body)
	return hdr[0], body, err
}

// parseParams decodes a StartupMessage payload (NUL-separated key/value pairs).
func parseParams(payload []byte) map[string]string {
	params := map[string]string{}
	fields := bytes.Split(bytes.TrimRight(payload, "\x00"), []byte{0})
	for i := 0; i+1 < len(fields); i += 2 {
		params[string(fields[i])] = string(fields[i+1])
	}
	return params
}

func message(typ byte, body []byte) []byte {
	out := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(len(body)+4))
	return append(out, body...)
}

// authCleartextPassword is AuthenticationCleartextPassword ('R', code 3).
func authCleartextPassword() []byte { return message('R', []byte{0, 0, 0, 3}) }

// errorResponse is a FATAL ErrorResponse with the given SQLSTATE and message.
func errorResponse(sqlstate, msg string) []byte {
	var b bytes.Buffer
	for _, f := range [][2]string{{"S", "FATAL"}, {"V", "FATAL"}, {"C", sqlstate}, {"M", msg}} {
		b.WriteString(f[0] + f[1] + "\x00")
	}
	b.WriteByte(0)
	return message('E', b.Bytes())
}

// sslRequest is the 8-byte SSLRequest packet.
func sslRequest() []byte {
	out := make([]byte, 8)
	binary.BigEndian.PutUint32(out, 8)
	binary.BigEndian.PutUint32(out[4:], sslRequestCode)
	return out
}

// startTLSClient sends an SSLRequest on conn and, if the server answers 'S',
// completes a TLS client handshake with cfg.
func startTLSClient(conn net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	if _, err := conn.Write(sslRequest()); err != nil {
		return nil, err
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return nil, err
	}
	if answer[0] != 'S' {
		return nil, fmt.Errorf("pgsecure/testutil: server answered %q to SSLRequest", answer[0])
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	return tc, nil
}

// inspectOnlyTLS accepts any server certificate. It is used only to read what a
// server presents; no data is ever sent over such a connection.
func inspectOnlyTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // inspection only, see doc
}
