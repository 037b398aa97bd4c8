package pgwire

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func probeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestProbeSendsOnlyTheStartupMessage captures, through a relay, every byte
// the probe sends to a real PostgreSQL that accepts plaintext: exactly one
// StartupMessage, nothing else.
func TestProbeSendsOnlyTheStartupMessage(t *testing.T) {
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{HBA: []string{"host all all 127.0.0.1/32 scram-sha-256"}})
	pg.CreateRole(t, "app", "probe-pw")
	tap := testutil.WireTap(t, pg.Addr())

	res, err := ProbePlaintext(probeCtx(t), tap.Addr, "app", "postgres")
	require.NoError(t, err)
	assert.Equal(t, Accepted, res.Verdict)
	assert.EqualValues(t, AuthSASL, res.AuthCode)
	assert.Equal(t, StartupMessage("app", "postgres"), tap.Wire())
}

func TestProbeRefusedByHBA(t *testing.T) {
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{}) // hostnossl ... reject
	res, err := ProbePlaintext(probeCtx(t), pg.Addr(), "app", "postgres")
	require.NoError(t, err)
	assert.Equal(t, Refused, res.Verdict)
	assert.Equal(t, "28000", res.SQLState)
	assert.Contains(t, res.Message, "no encryption")
}

// TestProbeGivesAHostileServerNothing: a server that asks for a cleartext
// password gets none.
func TestProbeGivesAHostileServerNothing(t *testing.T) {
	peer := testutil.PlaintextServer(t)
	res, err := ProbePlaintext(probeCtx(t), peer.Addr, "app", "postgres")
	require.NoError(t, err)
	assert.Equal(t, Accepted, res.Verdict)
	assert.EqualValues(t, AuthCleartextPassword, res.AuthCode)
	assert.Empty(t, peer.Passwords())
	require.Len(t, peer.Startups(), 1)
	assert.Equal(t, "app", peer.Startups()[0]["user"])
}

func TestProbeUnreachable(t *testing.T) {
	_, err := ProbePlaintext(probeCtx(t), "127.0.0.1:1", "app", "postgres")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pgsecure: plaintext probe: cannot connect to 127.0.0.1:1")
}

// TestObserverParsesSplitStreams feeds a recorded exchange one byte at a
// time and checks what the observer keeps: the SASL mechanism, never the
// password of a cleartext exchange.
func TestObserverParsesSplitStreams(t *testing.T) {
	for name, tc := range map[string]struct {
		server, client [][]byte
		want           Auth
		method         string
	}{
		"scram-plus": {
			server: [][]byte{authMsg(AuthSASL, []byte("SCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00")), authMsg(AuthSASLContinue, []byte("r=x")),
				authMsg(AuthSASLFinal, []byte("v=y")), authMsg(AuthOK, nil), msg('K', []byte{0, 0, 0x30, 0x39, 1, 2, 3, 4}), msg('Z', []byte{'I'})},
			client: [][]byte{StartupMessage("app", "db"), msg('p', append([]byte("SCRAM-SHA-256-PLUS\x00"), 0, 0, 0, 3, 'a', 'b', 'c'))},
			want: Auth{Requests: []uint32{10, 11, 12, 0}, Offered: []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"},
				Mechanism: "SCRAM-SHA-256-PLUS", BackendPID: 12345, User: "app", Database: "db"},
			method: "scram-sha-256",
		},
		"cleartext": {
			server: [][]byte{authMsg(AuthCleartextPassword, nil), authMsg(AuthOK, nil), msg('K', []byte{0, 0, 0, 7, 0, 0, 0, 0})},
			client: [][]byte{StartupMessage("app", "db"), msg('p', []byte("hunter2\x00"))},
			want:   Auth{Requests: []uint32{3, 0}, BackendPID: 7, User: "app", Database: "db"},
			method: "password",
		},
		"trust": {
			server: [][]byte{authMsg(AuthOK, nil)},
			client: [][]byte{StartupMessage("app", "db")},
			want:   Auth{Requests: []uint32{0}, User: "app", Database: "db"},
			method: "none",
		},
	} {
		t.Run(name, func(t *testing.T) {
			obs := &Observer{}
			var sent bytes.Buffer
			server := bytes.NewReader(bytes.Join(tc.server, nil))
			var fe *pgproto3.Frontend
			build := obs.BuildFrontend(func(r io.Reader, w io.Writer) *pgproto3.Frontend {
				// Drive the tap directly: client messages in pgx's order.
				for i, m := range tc.client {
					for _, b := range m {
						_, err := w.Write([]byte{b})
						require.NoError(t, err)
					}
					if i == 0 { // the server answers the StartupMessage
						readN(t, r, len(tc.server[0]))
					}
				}
				readN(t, r, server.Len())
				return fe
			})
			build(server, &sent)
			got, ok := obs.Last()
			require.True(t, ok)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.method, got.Method())
			assert.NotContains(t, fmt.Sprintf("%#v", got), "hunter2", "a password message is never kept")
			assert.Equal(t, bytes.Join(tc.client, nil), sent.Bytes(), "the tap passes every byte through")
			if tc.want.BackendPID != 0 {
				_, ok := obs.Auth(tc.want.BackendPID)
				assert.True(t, ok)
			}
		})
	}
}

// readN reads n bytes from r one byte at a time.
func readN(t *testing.T, r io.Reader, n int) {
	t.Helper()
	buf := make([]byte, 1)
	for range n {
		_, err := r.Read(buf)
		require.NoError(t, err)
	}
}

func msg(typ byte, body []byte) []byte {
	out := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(len(body)+4))
	return append(out, body...)
}

func authMsg(code uint32, data []byte) []byte {
	body := binary.BigEndian.AppendUint32(nil, code)
	return msg('R', append(body, data...))
}
