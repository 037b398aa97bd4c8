package proof

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// matrixRow is one hostile situation pgsecure must refuse.
type matrixRow struct {
	name string
	// sentinel is what the refusal must wrap (errors.Is).
	sentinel error
	// feature names the recent pgsecure feature the row depends on; a
	// failing row says so in the table.
	feature string
	setup   func(t *testing.T, m *matrix) attempt
}

// attempt is what a row connects to and how its wire is watched.
type attempt struct {
	connString string
	// builder adds settings to the Builder.
	builder func(*pgsecure.Builder) *pgsecure.Builder
	// captures are byte streams the password must never appear in: what
	// the client sent in cleartext on the TCP connection, and what a
	// TLS-terminating peer decrypted.
	captures []capture
	// noPasswordMessage, if set, returns the client's decrypted stream, in
	// which no PasswordMessage ('p', used for cleartext, md5 and SASL) may
	// appear.
	noPasswordMessage func() []byte
	// contacted returns how many TCP connections the hostile end accepted;
	// wantContact says whether the refusal must happen on the wire (true)
	// or before dialling (false).
	contacted   func() int
	wantContact bool
	// check makes row-specific assertions on the refusal.
	check func(t *testing.T, err error)
	// control, run after the pgsecure attempt, shows that the hostile end
	// really is hostile: an unguarded client is harmed by it.
	control func(t *testing.T)
}

type capture struct {
	what  string
	bytes func() []byte
}

// peerCaptures is the usual set for a test double: the cleartext wire, what
// it decrypted, and the passwords it managed to ask for.
func peerCaptures(p *testutil.Peer) []capture {
	return []capture{
		{"client->peer TCP bytes", p.Wire},
		{"bytes the peer decrypted", p.Decrypted},
		{"passwords the peer obtained", func() []byte { return []byte(strings.Join(p.Passwords(), "\n")) }},
	}
}

// matrix holds what the rows share: the pinned CA, an unrelated CA, a server
// with a valid certificate that also accepts plaintext, and a server whose
// certificate rows replace.
type matrix struct {
	pki   *testutil.PKI
	other *certgen.CA
	good  *testutil.Postgres
	swap  *testutil.Postgres
}

type rowResult struct {
	name, sentinel, onWire, result string
	ran                            bool
}

// TestHostileMatrix runs every hostile row and prints the pass table:
//
//	go test ./internal/proof -run TestHostileMatrix -v
func TestHostileMatrix(t *testing.T) {
	m := &matrix{pki: testutil.NewPKI(t)}
	var err error
	m.other, err = certgen.NewCA("unpinned CA", certgen.ECDSAP256)
	require.NoError(t, err)
	m.good = startServer(t, m.pki, testutil.LocalServerOptions(), "host all all 127.0.0.1/32 scram-sha-256")
	m.swap = startServer(t, m.pki, testutil.LocalServerOptions())

	var results []rowResult
	for _, r := range matrixRows() {
		res := rowResult{name: r.name, sentinel: sentinelName(r.sentinel), onWire: "?"}
		ok := t.Run(r.name, func(t *testing.T) { res.ran = true; m.run(t, r, &res) })
		switch {
		case !res.ran:
			continue // filtered out by -run
		case ok:
			res.result = "pass"
		case r.feature != "":
			res.result = "FAIL (feature: " + r.feature + ")"
		default:
			res.result = "FAIL"
		}
		results = append(results, res)
	}
	t.Log("\n" + passTable(results))
}

func (m *matrix) run(t *testing.T, r matrixRow, res *rowResult) {
	a := r.setup(t, m)
	var logs testutil.LogBuffer
	b := pgsecure.NewBuilder(a.connString).RootCAFile(m.pki.CAFile).
		Logger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if a.builder != nil {
		b = a.builder(b)
	}
	pool, err := b.Build(ctxT(t, 30*time.Second))
	if pool != nil {
		pool.Close()
	}

	leaked := false
	for _, c := range append(a.captures, capture{"pgsecure's log", logs.Bytes}) {
		if containsPassword(c.bytes()) {
			leaked = true
			t.Errorf("the password appeared in %s", c.what)
		}
	}
	if a.noPasswordMessage != nil {
		if types := a.noPasswordMessage(); bytes.IndexByte(frontendTypes(types), 'p') >= 0 {
			leaked = true
			t.Errorf("the client answered the server's authentication request (sent a PasswordMessage) before refusing")
		}
	}
	res.onWire = "no"
	if leaked {
		res.onWire = "YES"
	}

	require.Error(t, err, "pgsecure must refuse")
	assert.Nil(t, pool)
	assert.ErrorIs(t, err, r.sentinel)
	assert.NotContains(t, err.Error(), appPassword, "the error must not carry the password")
	assert.True(t, strings.HasPrefix(err.Error(), "pgsecure"), "error prefix: %s", err)
	if a.wantContact {
		assert.Positive(t, a.contacted(), "the refusal must come from talking to the hostile end")
	} else if a.contacted != nil {
		assert.Zero(t, a.contacted(), "refused before dialling")
	}
	if a.check != nil {
		a.check(t, err)
	}
	t.Logf("refused: %v", err)
	if a.control != nil {
		a.control(t)
	}
}

func sentinelName(err error) string {
	switch err {
	case pgsecure.ErrNotEncrypted:
		return "ErrNotEncrypted"
	case pgsecure.ErrUntrustedServer:
		return "ErrUntrustedServer"
	case pgsecure.ErrInsecureConfig:
		return "ErrInsecureConfig"
	case pgsecure.ErrInsecureAuth:
		return "ErrInsecureAuth"
	}
	return fmt.Sprint(err)
}

func passTable(rows []rowResult) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ROW\tSENTINEL\tPASSWORD-ON-WIRE\tRESULT")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.name, r.sentinel, r.onWire, r.result)
	}
	_ = w.Flush()
	return sb.String()
}
