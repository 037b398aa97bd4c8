package secrets

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/require"
)

// testSecret is the password used throughout the tests; redaction tests look
// for it everywhere.
const testSecret = "hunter2-S3cret!pw"

// newClock is the cache's clock in these tests, at a fixed start.
func newClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// scripted is a test double standing in for a secret backend (Vault, AWS):
// the cache tests need to count fetches exactly and to make the backend fail
// or block on demand, which a real backend cannot do deterministically.
type scripted struct {
	named
	calls       atomic.Int64
	fn          func(ctx context.Context, n int64) (Credentials, error)
	invalidated []Credentials
	closed      int
	mu          sync.Mutex
}

func newScripted(fn func(ctx context.Context, n int64) (Credentials, error)) *scripted {
	return &scripted{named: named{"scripted"}, fn: fn}
}

func (s *scripted) Credentials(ctx context.Context) (Credentials, error) {
	return s.fn(ctx, s.calls.Add(1))
}

func (s *scripted) Invalidate(rejected Credentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, rejected)
}

func (s *scripted) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed++
	return nil
}

// creds returns generation n of the test credentials.
func creds(n int64, expires time.Time) Credentials {
	return Credentials{User: "app", Password: NewSecret(testSecret + string(rune('a'+n))), Expires: expires,
		Version: "v" + string(rune('0'+n)), Source: "scripted"}
}

// logBuffer returns a debug-level JSON logger writing to a buffer.
func logBuffer() (*slog.Logger, *testutil.LogBuffer) {
	b := &testutil.LogBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// eventually polls cond for at most 10 s and reports whether it held.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// waitFor is eventually for the test goroutine: it fails the test when cond
// never holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	require.True(t, eventually(cond), "timed out waiting for "+what)
}
