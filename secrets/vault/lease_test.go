package vault

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/secrets"
)

func TestRenewDelay(t *testing.T) {
	ttl := 90 * time.Second
	assert.Equal(t, 60*time.Second, renewDelay(ttl, 0), "no jitter: two thirds of the lease")
	assert.Equal(t, 55500*time.Millisecond, renewDelay(ttl, 0.5))
	assert.Greater(t, renewDelay(ttl, 0.999999), 51*time.Second, "jitter never goes below 17/30")
}

func TestRetryDelay(t *testing.T) {
	assert.Equal(t, 500*time.Millisecond, retryDelay(1, 0))
	assert.Equal(t, 2*time.Second, retryDelay(3, 0))
	assert.Less(t, retryDelay(3, 0.9999), 4*time.Second)
	assert.Equal(t, 30*time.Second, retryDelay(7, 0), "capped at a minute before jitter")
	assert.Equal(t, 30*time.Second, retryDelay(100, 0))
}

func TestMargin(t *testing.T) {
	assert.Equal(t, time.Second, margin(5*time.Second))
	assert.Equal(t, 6*time.Minute, margin(time.Hour))
	assert.Equal(t, 500*time.Millisecond, margin(time.Second), "never more than half the lease")
}

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
	c, err := NewClient("https://vault:8200", "", TokenAuth("t"))
	require.NoError(t, err)
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
		{"read", &api.ResponseError{StatusCode: http.StatusForbidden, Errors: []string{"permission denied"}}, ErrDenied},
		{"login", &api.ResponseError{StatusCode: http.StatusBadRequest, Errors: []string{"invalid role or secret ID"}}, ErrDenied},
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
		assert.Contains(t, err.Error(), "pgsecure/vault: "+tt.op+" database/creds/app")
		var re *api.ResponseError
		if errors.As(tt.err, &re) {
			assert.ErrorAs(t, err, &re)
			assert.Contains(t, err.Error(), "HTTP ")
		}
	}
	assert.ErrorIs(t, ErrDenied, secrets.ErrInvalid, "denied wraps ErrInvalid: retrying will not help")
}

func TestErrorOmitsRawBodies(t *testing.T) {
	err := classify("read", "p", &api.ResponseError{StatusCode: 500, RawError: true, Errors: []string{"<html>password=hunter2</html>"}})
	assert.NotContains(t, err.Error(), "hunter2")
}
