package connect

import (
	"fmt"

	"github.com/pgsecure/pgsecure/verify"
)

// What a server may send before AuthenticationOk, as libpq holds it
// (PQconnectPoll, CONNECTION_AWAITING_RESPONSE): authentication requests
// ('R') and NegotiateProtocolVersion ('v', libpq 16+) of 8 to 2000 bytes,
// and an ErrorResponse ('E') of 8 to 30000 bytes, lengths counting the
// length word. Anything else (ParameterStatus, NoticeResponse, ...) means the
// peer is not a PostgreSQL server at this point of the protocol, and psql
// refuses it. The count and total bound what a peer may make the client
// read before it has proven anything: a SCRAM exchange is four requests, a
// GSS one a few more.
const (
	maxPreAuthRequestLen = 2000
	maxPreAuthErrorLen   = 30000
	maxPreAuthMessages   = 64
	maxPreAuthBytes      = 64 << 10
)

// preAuthCount is what arrived before AuthenticationOk.
type preAuthCount struct {
	messages, bytes int
}

// backendMessageNames names the backend messages a hostile peer might send
// before authentication.
var backendMessageNames = map[byte]string{
	'R': "Authentication", 'v': "NegotiateProtocolVersion", 'E': "ErrorResponse",
	'S': "ParameterStatus", 'N': "NoticeResponse", 'K': "BackendKeyData", 'Z': "ReadyForQuery",
	'A': "NotificationResponse", 'T': "RowDescription", 'D': "DataRow", 'C': "CommandComplete",
	'G': "CopyInResponse", 'H': "CopyOutResponse", 'W': "CopyBothResponse", 'd': "CopyData",
}

func messageName(typ byte) string {
	if n, ok := backendMessageNames[typ]; ok {
		return fmt.Sprintf("a %s message ('%c')", n, typ)
	}
	return fmt.Sprintf("a message of unknown type 0x%02x", typ)
}

// checkPreAuth holds one message header (type, length including the length
// word) that arrived before AuthenticationOk to libpq's rules, before its
// body is read. It may see the same header more than once, while the body
// arrives.
func (w *authWatch) checkPreAuth(typ byte, size int) error {
	limit := maxPreAuthRequestLen
	switch typ {
	case 'R', 'v':
	case 'E':
		limit = maxPreAuthErrorLen
	default:
		return w.refusePreAuth(messageName(typ)+", which a PostgreSQL server sends only after authentication succeeded", true)
	}
	if size < 8 || size > limit {
		return w.refusePreAuth(fmt.Sprintf("%s of %d bytes, outside the 8 to %d bytes a PostgreSQL server sends before authentication",
			messageName(typ), size, limit), true)
	}
	return nil
}

// countPreAuth counts a complete message that arrived before
// AuthenticationOk and holds the count and total to their bounds.
func (w *authWatch) countPreAuth(size int) error {
	w.preAuth.messages++
	w.preAuth.bytes += 1 + size
	switch {
	case w.preAuth.messages > maxPreAuthMessages:
		return w.refusePreAuth(fmt.Sprintf("more than %d messages (a real exchange needs a handful)", maxPreAuthMessages), false)
	case w.preAuth.bytes > maxPreAuthBytes:
		return w.refusePreAuth(fmt.Sprintf("more than %d bytes (a real exchange needs a few hundred)", maxPreAuthBytes), false)
	}
	return nil
}

func (w *authWatch) refusePreAuth(what string, libpqToo bool) error {
	also := ""
	if libpqToo {
		also = "; psql refuses this too"
	}
	return w.refused(&verify.AuthMethodError{
		Problem: fmt.Sprintf("before authentication the server sent %s%s; nothing was sent after the startup message", what, also),
		Fix: "the peer holds a trusted certificate but does not speak PostgreSQL's authentication protocol: check that the host " +
			"and port name the PostgreSQL server, not another service or a proxy that rewrites the protocol"})
}
