package connect

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/pgsecure/pgsecure/verify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type countingObserver struct{ refused []Refusal }

func (o *countingObserver) Verified(context.Context, verify.Report, Timings) {}
func (o *countingObserver) Refused(_ context.Context, r Refusal)             { o.refused = append(o.refused, r) }
func (o *countingObserver) LoginFailed(context.Context, LoginFailure)        {}

// msg encodes a backend message whose length word is size (body padded).
func msg(typ byte, size int, prefix []byte) []byte {
	out := make([]byte, 1+size)
	out[0] = typ
	binary.BigEndian.PutUint32(out[1:5], uint32(size))
	copy(out[5:], prefix)
	return out
}

// readAll reads everything the watch lets through, as pgx would.
func readAll(w *authWatch) error {
	buf := make([]byte, 512)
	for {
		if _, err := w.Read(buf); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestPreAuthBounds: libpq's limits before AuthenticationOk, at their
// edges, and the count; after AuthenticationOk the watch passes anything.
func TestPreAuthBounds(t *testing.T) {
	sasl := []byte{0, 0, 0, 11} // SASLContinue: counted, not answered
	ok := msg('R', 8, []byte{0, 0, 0, 0})
	scram := []byte{0, 0, 0, 10, 'S', 'C', 'R', 'A', 'M', '-', 'S', 'H', 'A', '-', '2', '5', '6', 0, 0}
	many := func(n int) []byte {
		var b []byte
		for range n {
			b = append(b, msg('R', 8, sasl)...)
		}
		return b
	}
	for _, c := range []struct {
		name   string
		stream []byte
		wants  string // "" when let through
	}{
		{"requests at 2000 bytes, then ok", append(append(msg('R', len(scram)+4, scram), msg('R', 2000, sasl)...), ok...), ""},
		{"request of 2001 bytes", msg('R', 2001, sasl), "of 2001 bytes"},
		{"request of 7 bytes", msg('R', 7, sasl), "of 7 bytes"},
		{"error of 30001 bytes", msg('E', 30001, nil), "of 30001 bytes"},
		{"NegotiateProtocolVersion", append(append(msg('v', 12, nil), msg('R', len(scram)+4, scram)...), ok...), ""},
		{"ParameterStatus", msg('S', 8, nil), "ParameterStatus"},
		{"NoticeResponse", msg('N', 8, nil), "NoticeResponse"},
		{"64 messages", append(append(msg('R', len(scram)+4, scram), many(62)...), ok...), ""},
		{"65 messages", many(65), "more than 64 messages"},
		{"33 requests of 2000 bytes", bytes.Repeat(msg('R', 2000, sasl), 33), "more than 65536 bytes"},
		{"after AuthenticationOk anything", append(append(msg('R', len(scram)+4, scram), ok...), msg('S', 1<<21, nil)...), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			obs := &countingObserver{}
			w := newAuthWatch(&Policy{Auth: SCRAMOnly(), Observer: obs}, nil, nil)
			w.r = bytes.NewReader(c.stream)
			err := readAll(w)
			if c.wants == "" {
				require.NoError(t, err)
				assert.Empty(t, obs.refused)
				return
			}
			require.ErrorIs(t, err, ErrInsecureAuth)
			assert.Contains(t, err.Error(), c.wants)
			assert.Len(t, obs.refused, 1)
		})
	}
}
