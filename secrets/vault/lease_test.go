package vault

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
)

func TestPermanentRenewalErrors(t *testing.T) {
	for code, want := range map[int]bool{400: true, 403: true, 404: true, 429: false, 500: false, 503: false} {
		err := classify("renew", "sys/leases/renew", &api.ResponseError{StatusCode: code})
		assert.Equal(t, want, permanent(err), code)
	}
	assert.False(t, permanent(errors.New("dial tcp: connection refused")))
}

// leaseSource returns a Database source with a fixed clock and a current
// lease, for tests of the state machine that need no server.
func leaseSource(t *testing.T, now *time.Time) (*Source, *lease) {
	t.Helper()
	clearVaultEnv(t)
	c, err := NewClient("https://127.0.0.1:1", "", TokenAuth("t")) // nothing listens: Vault is down
	require.NoError(t, err)
	c.api.SetMaxRetries(0)
	s, err := Database(c, "database", "app")
	require.NoError(t, err)
	s.now = func() time.Time { return *now }
	l := &lease{id: "database/creds/app/L1", ttl: 100 * time.Second,
		creds: secrets.Credentials{User: "u1", Password: secrets.NewSecret("p1"), Version: "database/creds/app/L1", Expires: now.Add(100 * time.Second)}}
	s.cur = l
	return s, l
}

func TestLeaseIsReusedUntilMargin(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s, _ := leaseSource(t, &now)
	now = now.Add(89 * time.Second)
	creds, err := s.Credentials(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "u1", creds.User)
}

func TestInvalidateRetiresOnlyTheCurrentLease(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s, l := leaseSource(t, &now)
	s.Invalidate(secrets.Credentials{Version: "database/creds/app/OLD"})
	assert.False(t, l.retired, "an older lease's rejection must not retire the current one")
	s.Invalidate(secrets.Credentials{Version: l.id})
	assert.True(t, l.retired)
}

func TestClosedSourceRefuses(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s, l := leaseSource(t, &now)
	stopped := false
	l.stop = func() { stopped = true }
	require.NoError(t, s.Close(context.Background()))
	assert.True(t, stopped, "Close stops the lease watcher")
	_, err := s.Credentials(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, err, secrets.ErrUnavailable)
	require.NoError(t, s.Close(context.Background()), "a second Close is a no-op")
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		op   string
		err  error
		kind error
	}{
		{"read", &api.ResponseError{StatusCode: http.StatusNotFound}, secrets.ErrNotFound},
		{"read", api.ErrSecretNotFound, secrets.ErrNotFound},
		{"read", &api.ResponseError{StatusCode: http.StatusForbidden, Errors: []string{"permission denied"}}, secrets.ErrAccessDenied},
		{"login", &api.ResponseError{StatusCode: http.StatusBadRequest, Errors: []string{"invalid role or secret ID"}}, secrets.ErrAccessDenied},
		{"read", &api.ResponseError{StatusCode: http.StatusServiceUnavailable, Errors: []string{"Vault is sealed"}}, secrets.ErrUnavailable},
		{"read", &api.ResponseError{StatusCode: http.StatusTooManyRequests}, secrets.ErrUnavailable},
		{"read", &api.ResponseError{StatusCode: http.StatusBadRequest}, secrets.ErrInvalid},
		{"read", &api.ResponseError{StatusCode: http.StatusBadRequest, Errors: []string{"unknown role: app"}}, secrets.ErrNotFound},
		{"read", context.DeadlineExceeded, secrets.ErrUnavailable},
	}
	for _, tt := range tests {
		err := classify(tt.op, "database/creds/app", tt.err)
		assert.ErrorIs(t, err, tt.kind, "%v", tt.err)
		assert.ErrorIs(t, err, tt.err)
		assert.Contains(t, err.Error(), "pgsecure: "+tt.op+" database/creds/app: ")
		var re *api.ResponseError
		if errors.As(tt.err, &re) {
			assert.ErrorAs(t, err, &re)
			assert.Contains(t, err.Error(), "HTTP ")
		}
	}
}

// TestDeniedIsAccessDenied is issue 13 defect 2: a Vault permission problem
// is classified like an AWS one (secrets.ErrAccessDenied), not as a
// malformed secret.
func TestDeniedIsAccessDenied(t *testing.T) {
	err := classify("read", "database/creds/app", &api.ResponseError{StatusCode: http.StatusForbidden, Errors: []string{"permission denied"}})
	require.ErrorIs(t, err, secrets.ErrAccessDenied)
	assert.NotErrorIs(t, err, secrets.ErrInvalid)
	var e *secrets.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "read database/creds/app", e.Op)
	assert.Contains(t, e.Hint, "policy")
}

func TestErrorOmitsRawBodies(t *testing.T) {
	err := classify("read", "p", &api.ResponseError{StatusCode: 500, RawError: true, Errors: []string{"<html>password=hunter2</html>"}})
	assert.NotContains(t, err.Error(), "hunter2")
}

// TestLeaseServedThroughVaultOutageThenExpired is issue 13 item 8 for a
// Database source: with Vault down, the current lease is served until it
// expires (one warning per outage, callers not made to wait again), then
// the error wraps secrets.ErrExpired and names the source.
func TestLeaseServedThroughVaultOutageThenExpired(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	now := start
	s, _ := leaseSource(t, &now)
	logs := &testutil.LogBuffer{}
	s.cfg.logger = slog.New(slog.NewTextHandler(logs, nil))

	now = start.Add(95 * time.Second) // in the mandatory window (the last tenth)
	for range 3 {
		creds, err := s.Credentials(context.Background())
		require.NoError(t, err, "valid credentials are served while Vault is down")
		assert.Equal(t, "u1", creds.User)
	}
	waitIdle(t, s)
	assert.Equal(t, 1, strings.Count(logs.String(), "serving the current lease"), "one warning per outage")

	now = start.Add(101 * time.Second) // past the lease's end
	_, err := s.Credentials(context.Background())
	require.ErrorIs(t, err, secrets.ErrExpired)
	require.ErrorIs(t, err, secrets.ErrUnavailable, "Vault's failure is reachable")
	assert.Contains(t, err.Error(), "vault://127.0.0.1:1/database/creds/app", "names the source")
	assert.Contains(t, err.Error(), "the lease expires at")
}

// TestStaleLeaseIsServedWhileReplaced: a lease due for replacement (max TTL
// near) is still handed out while one background read replaces it.
func TestStaleLeaseIsServedWhileReplaced(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s, l := leaseSource(t, &now)
	s.mu.Lock()
	l.stale = true
	s.mu.Unlock()
	creds, err := s.Credentials(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "u1", creds.User, "the stale lease is served at once")
	waitIdle(t, s)
	s.mu.Lock()
	defer s.mu.Unlock()
	assert.Equal(t, 1, s.failures, "one background read was attempted (Vault is down here)")
	assert.Same(t, l, s.cur)
}

func waitIdle(t *testing.T, s *Source) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.fetch.InFlight() {
		require.True(t, time.Now().Before(deadline), "background read never ended")
		time.Sleep(time.Millisecond)
	}
}

func TestOnlyDatabaseSourcesManageTheirLifetime(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	db, _ := leaseSource(t, &now)
	assert.Same(t, db, secrets.Cached(db, secrets.CacheOptions{}), "a Database source is not wrapped in a second timer")
	assert.True(t, db.Rotates())
	static, err := StaticRole(db.client, "database", "app")
	require.NoError(t, err)
	_, cached := secrets.Cached(static, secrets.CacheOptions{}).(*secrets.Cache)
	assert.True(t, cached, "a static role is read on every call: cached")
	assert.True(t, static.Rotates())
	kv, err := KV(db.client, "secret", "db")
	require.NoError(t, err)
	assert.False(t, kv.Rotates())
}

// TestHangingRenewalIsAFailure: a renewal that Vault accepts and never
// answers does not hold the lease watcher; the attempt times out while the
// lease can still be served, counts as a failure and the lease is replaced.
// The server is a test double: a hostile peer (standing for a network
// partition or a wedged proxy in front of Vault) that a real Vault is not.
func TestHangingRenewalIsAFailure(t *testing.T) {
	clearVaultEnv(t)
	var renewals atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/sys/leases/renew" {
			renewals.Add(1)
			_, _ = io.Copy(io.Discard, r.Body) // so that the client's hang-up ends the request
			<-r.Context().Done()               // never answers
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"errors":["Vault is sealed"]}`))
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	c, err := NewClient(srv.URL, caFile, TokenAuth("t"))
	require.NoError(t, err)
	c.api.SetMaxRetries(0)
	s, err := Database(c, "database", "app")
	require.NoError(t, err)
	logs := &testutil.LogBuffer{}
	s.cfg.logger = slog.New(slog.NewTextHandler(logs, nil))
	issued := time.Now()
	// A 5 s lease is renewed at once (its mandatory window starts after 1 s).
	l := &lease{id: "database/creds/app/L1", ttl: 5 * time.Second,
		creds: secrets.Credentials{User: "u1", Password: secrets.NewSecret("p1"), Version: "database/creds/app/L1", Expires: issued.Add(5 * time.Second)}}
	s.cur = l

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan struct{})
	s.wg.Add(1)
	go func() { s.watch(ctx, l); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the lease watcher is stuck in a renewal Vault never answers (a lease of 5 s); logs:\n%s", logs)
	}
	waitIdle(t, s)
	assert.Equal(t, int32(1), renewals.Load(), "one renewal was attempted")
	assert.Contains(t, logs.String(), "replacing the database credentials", "the lease is replaced")
	assert.Contains(t, logs.String(), "Vault did not answer in time", "the log says why")
}
