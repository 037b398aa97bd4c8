package pgwire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Verdict is the outcome of a plaintext probe.
type Verdict string

// Probe outcomes.
const (
	// Accepted: the server answered a plaintext StartupMessage with an
	// authentication request (or AuthenticationOk): it would let a client
	// log in without TLS.
	Accepted Verdict = "accepted"
	// Refused: the server refused the plaintext connection before any
	// authentication (pg_hba.conf "hostnossl ... reject" or no matching
	// "host" line), SQLSTATE 28000.
	Refused Verdict = "refused"
	// Inconclusive: the server answered something else (another error such
	// as too many connections, or an unexpected message).
	Inconclusive Verdict = "inconclusive"
)

// ProbeResult is what the server answered to a plaintext StartupMessage.
type ProbeResult struct {
	Verdict Verdict
	// AuthCode is the authentication request code when Accepted (AuthOK
	// means the server let the user in without any authentication).
	AuthCode uint32
	// SQLState and Message are the server's ErrorResponse, if it sent one.
	SQLState, Message string
}

// maxProbeMessage bounds what the probe reads from the server.
const maxProbeMessage = 64 << 10

// ProbePlaintext opens a new TCP connection to addr and sends a
// StartupMessage for user and database WITHOUT an SSLRequest, then reads the
// server's first answer and closes the connection. It never sends anything
// else: no password, no SASL message, whatever the server asks. Dialling and
// reading are bounded by ctx.
func ProbePlaintext(ctx context.Context, addr, user, database string) (ProbeResult, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("pgsecure: plaintext probe: cannot connect to %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(StartupMessage(user, database)); err != nil {
		return ProbeResult{}, fmt.Errorf("pgsecure: plaintext probe: sending the startup message to %s: %w", addr, err)
	}
	for range 4 { // a NegotiateProtocolVersion or notice may come first
		typ, body, err := readMessage(conn)
		if err != nil {
			return ProbeResult{}, fmt.Errorf("pgsecure: plaintext probe: reading the answer of %s: %w", addr, err)
		}
		switch typ {
		case 'R':
			if len(body) < 4 {
				return ProbeResult{Verdict: Inconclusive, Message: "malformed authentication request"}, nil
			}
			return ProbeResult{Verdict: Accepted, AuthCode: binary.BigEndian.Uint32(body)}, nil
		case 'E':
			r := ProbeResult{Verdict: Inconclusive}
			r.SQLState, r.Message = errorFields(body)
			if r.SQLState == "28000" {
				r.Verdict = Refused
			}
			return r, nil
		case 'v', 'N':
			continue
		default:
			return ProbeResult{Verdict: Inconclusive, Message: fmt.Sprintf("unexpected message %q", typ)}, nil
		}
	}
	return ProbeResult{Verdict: Inconclusive, Message: "no authentication request or error"}, nil
}

// StartupMessage encodes a protocol 3.0 StartupMessage for user and database.
func StartupMessage(user, database string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0, 0, 0, 3, 0, 0})
	for _, kv := range [][2]string{{"user", user}, {"database", database}, {"application_name", "pgsecure check (plaintext probe)"}} {
		if kv[1] != "" {
			b.WriteString(kv[0] + "\x00" + kv[1] + "\x00")
		}
	}
	b.WriteByte(0)
	out := b.Bytes()
	binary.BigEndian.PutUint32(out, uint32(len(out)))
	return out
}

func readMessage(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > maxProbeMessage {
		return 0, nil, errors.New("the server's answer is not a PostgreSQL protocol message")
	}
	body := make([]byte, n-4)
	_, err := io.ReadFull(r, body)
	return hdr[0], body, err
}

// errorFields returns the SQLSTATE and message of an ErrorResponse body.
func errorFields(body []byte) (code, msg string) {
	for _, f := range bytes.Split(body, []byte{0}) {
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case 'C':
			code = string(f[1:])
		case 'M':
			msg = string(f[1:])
		}
	}
	return code, msg
}
