// Package pgwire reads just enough of the PostgreSQL frontend/backend protocol
// for `pgsecure check`: which authentication a connection went through (seen
// on the decrypted stream, see Observer) and whether a server accepts a
// plaintext connection (see ProbePlaintext).
package pgwire

import "encoding/binary"

// maxMessage bounds the messages the framer keeps; a longer length means the
// stream is not what we think it is, and parsing stops.
const maxMessage = 1 << 20

// framer splits a byte stream into protocol messages. It keeps the body only
// of the messages keep asks for, so bodies it does not need (a password
// message, query results) are never buffered.
type framer struct {
	untyped bool // the next message has no type byte (StartupMessage)
	hdr     []byte
	inBody  bool
	typ     byte
	need    int
	body    []byte
	keep    bool
	done    bool

	want   func(typ byte) bool
	handle func(typ byte, body []byte) (stop bool)
}

// feed consumes p. Once handle returned true, or a length is implausible,
// the framer ignores the rest of the stream.
func (f *framer) feed(p []byte) {
	for len(p) > 0 && !f.done {
		if !f.inBody {
			hdrLen := 5
			if f.untyped {
				hdrLen = 4
			}
			n := min(hdrLen-len(f.hdr), len(p))
			f.hdr = append(f.hdr, p[:n]...)
			p = p[n:]
			if len(f.hdr) < hdrLen {
				return
			}
			f.typ = 0
			if !f.untyped {
				f.typ = f.hdr[0]
			}
			length := int(binary.BigEndian.Uint32(f.hdr[hdrLen-4:]))
			f.hdr, f.untyped = f.hdr[:0], false
			if length < 4 || length > maxMessage {
				f.done = true
				return
			}
			f.inBody, f.need, f.keep = true, length-4, f.want(f.typ)
		}
		n := min(f.need, len(p))
		if f.keep {
			f.body = append(f.body, p[:n]...)
		}
		f.need -= n
		p = p[n:]
		if f.need == 0 {
			body := f.body
			f.body, f.inBody = nil, false
			if f.handle(f.typ, body) {
				f.done = true
			}
		}
	}
}
