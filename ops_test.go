package pgsecure_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eventLog collects OnEvent callbacks.
type eventLog struct {
	mu     sync.Mutex
	events []pgsecure.Event
}

func (l *eventLog) add(_ context.Context, e pgsecure.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) refusals() []pgsecure.RefusalKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []pgsecure.RefusalKind
	for _, e := range l.events {
		if r, ok := e.(pgsecure.ConnectionRefused); ok {
			out = append(out, r.Refusal)
		}
	}
	return out
}

// TestEveryRefusalIsSeen: a server answering 'N', a plaintext peer, an md5
// server, trust, and a wrong CA each produce exactly one refused event with
// its kind, and no log line during Build (Build returns the refusal).
func TestEveryRefusalIsSeen(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	pki := testutil.NewPKI(t)
	md5, md5PKI := authServer(t, "md5", "md5")
	trust, trustPKI := authServer(t, "trust", "scram-sha-256")
	good, goodPKI := server(t, testutil.LocalServerOptions())
	for _, tc := range []struct {
		name string
		dsn  string
		ca   string
		kind pgsecure.RefusalKind
	}{
		{"server answers N", peerDSN(testutil.AnswerN(t), "127.0.0.1"), pki.CAFile, pgsecure.RefusedPlaintext},
		{"plaintext peer", peerDSN(testutil.PlaintextServer(t), "127.0.0.1"), pki.CAFile, pgsecure.RefusedPlaintext},
		{"md5", dsn(md5, "localhost"), md5PKI.CAFile, pgsecure.RefusedAuthMethod},
		{"trust", dsn(trust, "localhost"), trustPKI.CAFile, pgsecure.RefusedAuthMethod},
		{"wrong CA", dsn(good, "localhost"), pki.CAFile, pgsecure.RefusedCertificate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testutil.LogBuffer
			events := &eventLog{}
			_, err := pgsecure.NewBuilder(tc.dsn).RootCAFile(tc.ca).Logger(slog.New(slog.NewTextHandler(&logs, nil))).OnEvent(events.add).Build(ctx)
			require.Error(t, err)
			assert.Equal(t, []pgsecure.RefusalKind{tc.kind}, events.refusals())
			assert.NotContains(t, logs.String(), "connection refused", "Build returns the refusal; it is not logged as well")
		})
	}
	_ = goodPKI
}

// TestStartupErrorCarriesOnlyTheCause: a failed start with a credential
// source says what failed, once, with no internal retry bookkeeping.
func TestStartupErrorCarriesOnlyTheCause(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	src := &rotatingSource{passwords: []string{appPassword}}
	_, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres?connect_timeout=5", closedPort())).
		RootCAFile(pki.CAFile).Credentials(src).Build(ctxT(t))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "retry")
	assert.Equal(t, 1, strings.Count(err.Error(), "connection refused"), err.Error())
}

// TestErrorsNameTheSettingUsed: each error names the setting the user
// actually used.
func TestErrorsNameTheSettingUsed(t *testing.T) {
	pg, pki := mtlsServer(t)
	ctx := ctxT(t)
	certFile, keyFile, _ := pki.Client(t, appUser)
	open := filepath.Join(t.TempDir(), "client.key")
	data, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(open, data, 0o644))
	t.Setenv("PGSSLCERT", certFile)
	t.Setenv("PGSSLKEY", open)
	_, err = pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Config(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
	assert.Contains(t, err.Error(), "from PGSSLKEY environment variable")
	assert.NotContains(t, err.Error(), "PGSSLCERT")

	// Swapped files: said so, not a permission problem.
	t.Setenv("PGSSLCERT", keyFile)
	t.Setenv("PGSSLKEY", certFile)
	_, err = pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Config(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
	assert.Contains(t, err.Error(), "look swapped")
	t.Setenv("PGSSLCERT", "")
	t.Setenv("PGSSLKEY", "")

	// A server demanding a client certificate: the fix names sslcert/sslkey.
	_, err = pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Build(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "asked for a client certificate")
	assert.Contains(t, err.Error(), "sslcert")

	// The CA from PGSSLROOTCERT: the wrong-CA fix names PGSSLROOTCERT.
	other := testutil.NewPKI(t)
	t.Setenv("PGSSLROOTCERT", other.CAFile)
	good, _ := server(t, testutil.LocalServerOptions())
	_, err = pgsecure.NewBuilder(dsn(good, "localhost")).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer)
	assert.Contains(t, err.Error(), "PGSSLROOTCERT")
	assert.NotContains(t, err.Error(), "RootCAFile")

	// A typo in sslmode is a typo, not a weaker mode.
	t.Setenv("PGSSLMODE", "verify_full")
	_, err = pgsecure.NewBuilder(dsn(good, "localhost")).Config(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
	assert.Contains(t, err.Error(), "did you mean verify-full")
	assert.NotContains(t, err.Error(), "weaker")
}
