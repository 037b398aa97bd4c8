package secrets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	const callers = 200
	var c *Cache
	src := newScripted(func(ctx context.Context, n int64) (Credentials, error) {
		// Answer only once every caller is waiting on this very fetch.
		if !eventually(func() bool { return c.waiting.Load() == callers }) {
			return Credentials{}, errors.New("not every caller joined the fetch")
		}
		return creds(n, time.Time{}), nil
	})
	c = NewCache(src, CacheOptions{})
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]Credentials, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = c.Credentials(t.Context())
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int64(1), src.calls.Load(), "backend calls")
	for i := range callers {
		require.NoError(t, errs[i])
		assert.Equal(t, "v1", results[i].Version)
	}
}

// clocked returns options whose clock is clock and whose jitter draws 0.
func clocked(clock *testutil.Clock) CacheOptions {
	return CacheOptions{now: clock.Now, rand: func() float64 { return 0 }}
}

// settle waits until no background fetch runs.
func settle(t *testing.T, c *Cache) {
	t.Helper()
	waitFor(t, "the background fetch to end", func() bool { return !c.group.InFlight() })
}

// TestCacheServesValidCredentialsWhileRefreshing is issue 13 defect 1: in
// the refresh-ahead window no caller waits for the backend while the cached
// credentials have time left; one background fetch runs meanwhile.
func TestCacheServesValidCredentialsWhileRefreshing(t *testing.T) {
	clock := newClock()
	release := make(chan struct{})
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) {
		if n > 1 {
			<-release // the backend is slow: the refresh is still running below
		}
		return creds(n, clock.Now().Add(30*time.Minute)), nil
	})
	c := NewCache(src, clocked(clock))
	_, err := c.Credentials(t.Context())
	require.NoError(t, err)

	clock.Advance(20 * time.Minute) // the advisory point: 2/3 of the lifetime
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			got, err := c.Credentials(t.Context())
			assert.NoError(t, err)
			assert.Equal(t, "v1", got.Version, "valid cached credentials are served during the refresh")
		})
	}
	wg.Wait() // every caller returned while the fetch is blocked
	assert.Zero(t, c.waiting.Load(), "nobody waited")
	assert.True(t, c.group.InFlight())
	waitFor(t, "the background fetch to reach the source", func() bool { return src.calls.Load() == 2 })

	close(release)
	settle(t, c)
	assert.Equal(t, int64(2), src.calls.Load(), "exactly one background fetch")
	got, err := c.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "v2", got.Version, "the refreshed credentials are served next")
}

// TestCacheWaitsOnlyInTheMandatoryWindow: once the cached credentials are
// within Margin of their end, callers wait for fresh ones.
func TestCacheWaitsOnlyInTheMandatoryWindow(t *testing.T) {
	clock := newClock()
	release := make(chan struct{})
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) {
		if n > 1 {
			<-release
		}
		return creds(n, clock.Now().Add(30*time.Minute)), nil
	})
	c := NewCache(src, clocked(clock))
	_, err := c.Credentials(t.Context())
	require.NoError(t, err)

	clock.Advance(27 * time.Minute) // 30m − 30m/10: the mandatory point
	done := make(chan Credentials)
	go func() { got, _ := c.Credentials(t.Context()); done <- got }()
	waitFor(t, "the caller to wait", func() bool { return c.waiting.Load() == 1 })
	close(release)
	assert.Equal(t, "v2", (<-done).Version)
}

func TestCacheSchedule(t *testing.T) {
	clock := newClock()
	t0 := clock.Now()
	for _, tc := range []struct {
		name                string
		life                time.Duration
		rand                float64
		advisory, mandatory time.Duration
	}{
		{"30 min, no jitter", 30 * time.Minute, 0, 20 * time.Minute, 27 * time.Minute},
		{"30 min, largest jitter", 30 * time.Minute, 0.999999, 17*time.Minute + 180*time.Microsecond, 27 * time.Minute},
		{"15 min IAM token", 15 * time.Minute, 0, 10 * time.Minute, 13*time.Minute + 30*time.Second},
		{"short lease: margin at least 4 s", 12 * time.Second, 0, 8 * time.Second, 8 * time.Second},
		{"tiny lease: waits for the next fetch at once", 5 * time.Second, 0, 1 * time.Second, 1 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := clocked(clock)
			o.rand = func() float64 { return tc.rand }
			c := NewCache(Static(creds(1, t0.Add(tc.life))), o)
			_, err := c.Credentials(t.Context())
			require.NoError(t, err)
			e := c.cur.Load()
			assert.Equal(t, tc.advisory, e.advisory.Sub(t0), "advisory")
			assert.Equal(t, tc.mandatory, e.mandatory.Sub(t0), "mandatory")
		})
	}
}

func TestCacheTTLWithoutExpiry(t *testing.T) {
	clock := newClock()
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, time.Time{}), nil })
	c := NewCache(src, clocked(clock))
	_, err := c.Credentials(t.Context())
	require.NoError(t, err)
	clock.Advance(5*time.Minute - time.Nanosecond)
	got, _ := c.Credentials(t.Context())
	assert.Equal(t, "v1", got.Version)
	assert.Equal(t, int64(1), src.calls.Load())
	clock.Advance(time.Nanosecond)
	got, _ = c.Credentials(t.Context())
	assert.Equal(t, "v1", got.Version, "credentials without expiry are served while the refresh runs")
	settle(t, c)
	got, _ = c.Credentials(t.Context())
	assert.Equal(t, "v2", got.Version, "default TTL is 5 min")
}

// TestCacheUnchangedInMandatoryWindowWaitsOnce: a source that has nothing
// newer yet (a rotation not done yet) makes callers wait
// once, not on every call until the credentials expire.
func TestCacheUnchangedInMandatoryWindowWaitsOnce(t *testing.T) {
	clock := newClock()
	expires := clock.Now().Add(time.Hour)
	var block atomic.Bool
	release := make(chan struct{})
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) {
		if block.Load() {
			<-release
		}
		return creds(1, expires), nil
	})
	c := NewCache(src, clocked(clock))
	_, err := c.Credentials(t.Context())
	require.NoError(t, err)
	clock.Advance(55 * time.Minute) // in the mandatory window
	_, err = c.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(2), src.calls.Load(), "the first caller in the window fetched")

	block.Store(true)
	clock.Advance(2 * time.Second) // past the back-off: a background fetch, no wait
	for range 10 {
		got, err := c.Credentials(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "v1", got.Version)
	}
	assert.Zero(t, c.waiting.Load(), "nobody waits for a source that has nothing newer")
	close(release)
	settle(t, c)
}

func TestCacheCachedLeavesLifetimeManagersAlone(t *testing.T) {
	lm := &managing{scripted: newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, time.Time{}), nil })}
	assert.Same(t, lm, Cached(lm, CacheOptions{}), "a source that manages its lifetime is not wrapped again")
	c := NewCache(Env(), CacheOptions{})
	assert.Same(t, c, Cached(c, CacheOptions{}), "a cache is not wrapped again")
	_, ok := Cached(Env(), CacheOptions{}).(*Cache)
	assert.True(t, ok, "other sources are cached")
	lm.off = true
	_, ok = Cached(lm, CacheOptions{}).(*Cache)
	assert.True(t, ok, "ManagesLifetime false: cached")
}

// managing is a scripted source that claims to manage its own lifetime.
type managing struct {
	*scripted
	off bool
}

func (m *managing) ManagesLifetime() bool { return !m.off }
func (m *managing) Rotates() bool         { return true }

func TestCacheRotatesForwards(t *testing.T) {
	assert.True(t, NewCache(&managing{scripted: newScripted(nil)}, CacheOptions{}).Rotates())
	assert.False(t, NewCache(Env(), CacheOptions{}).Rotates())
}

func TestCacheCallerCancellationDoesNotFailSharedFetch(t *testing.T) {
	release := make(chan struct{})
	fetchErr := make(chan error, 1)
	src := newScripted(func(ctx context.Context, n int64) (Credentials, error) {
		<-release
		fetchErr <- ctx.Err()
		return creds(n, time.Time{}), nil
	})
	c := NewCache(src, CacheOptions{})

	ctxA, cancelA := context.WithCancel(t.Context())
	errA := make(chan error, 1)
	go func() { _, err := c.Credentials(ctxA); errA <- err }()
	waitFor(t, "caller A to wait", func() bool { return c.waiting.Load() == 1 })
	type result struct {
		c   Credentials
		err error
	}
	resB := make(chan result, 1)
	go func() { got, err := c.Credentials(t.Context()); resB <- result{got, err} }()
	waitFor(t, "caller B to wait", func() bool { return c.waiting.Load() == 2 })

	cancelA()
	err := <-errA // returns while the fetch is still blocked
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "scripted")

	close(release)
	b := <-resB
	require.NoError(t, b.err)
	assert.Equal(t, "v1", b.c.Version)
	assert.NoError(t, <-fetchErr, "the shared fetch's context must not be cancelled by caller A")
	assert.Equal(t, int64(1), src.calls.Load())
}

func TestCacheFetchTimeout(t *testing.T) {
	src := newScripted(func(ctx context.Context, _ int64) (Credentials, error) {
		<-ctx.Done()
		return Credentials{}, newError(ErrUnavailable, "scripted", "timed out", ctx.Err())
	})
	c := NewCache(src, CacheOptions{FetchTimeout: time.Millisecond})
	_, err := c.Credentials(t.Context())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, ErrUnavailable)
}

func TestCacheInvalidate(t *testing.T) {
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, time.Time{}), nil })
	c := NewCache(src, CacheOptions{})
	v1, err := c.Credentials(t.Context())
	require.NoError(t, err)

	c.Invalidate(creds(0, time.Time{})) // an older generation
	got, _ := c.Credentials(t.Context())
	assert.Equal(t, "v1", got.Version, "a stale invalidation keeps fresh credentials")
	assert.Empty(t, src.invalidated, "a stale invalidation is not forwarded")

	sameVersionOtherPassword := v1
	sameVersionOtherPassword.Password = NewSecret("other")
	c.Invalidate(sameVersionOtherPassword)
	got, _ = c.Credentials(t.Context())
	assert.Equal(t, "v1", got.Version, "the password must match too")

	c.Invalidate(v1)
	require.Len(t, src.invalidated, 1, "forwarded to the source")
	assert.Equal(t, "v1", src.invalidated[0].Version)
	got, err = c.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "v2", got.Version, "the next call fetches again")
	assert.Equal(t, int64(2), src.calls.Load())
}

func TestCacheInvalidateDuringFetch(t *testing.T) {
	release := make(chan struct{})
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) {
		if n == 1 {
			<-release
		}
		return creds(n, time.Time{}), nil
	})
	c := NewCache(src, CacheOptions{})
	done := make(chan Credentials)
	go func() { got, _ := c.Credentials(t.Context()); done <- got }()
	waitFor(t, "the fetch to start", func() bool { return src.calls.Load() == 1 })
	c.Invalidate(creds(1, time.Time{})) // rejected while the fetch that returns them runs
	close(release)
	assert.Equal(t, "v2", (<-done).Version, "credentials fetched across an invalidation are fetched again")
	assert.Equal(t, int64(2), src.calls.Load())
}

func TestCacheServesCachedUntilExpiryThenErrExpired(t *testing.T) {
	clock := newClock()
	backendErr := &testBackendError{code: 503}
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) {
		if n == 1 {
			return creds(n, clock.Now().Add(10*time.Minute)), nil
		}
		return Credentials{}, newError(ErrUnavailable, "scripted", "backend down", backendErr)
	})
	log, buf := logBuffer()
	o := clocked(clock)
	o.Logger = log
	src.name = "vault:db/creds/app"
	c := NewCache(src, o)
	v1, err := c.Credentials(t.Context())
	require.NoError(t, err)

	clock.Advance(9*time.Minute + 30*time.Second) // in the mandatory window (the last minute)
	for i := range 5 {
		got, err := c.Credentials(t.Context())
		require.NoError(t, err, "attempt %d", i)
		assert.Equal(t, v1, got)
		settle(t, c)
		clock.Advance(2 * time.Second)
	}
	assert.Greater(t, src.calls.Load(), int64(2), "keeps retrying")
	assert.Equal(t, 1, strings.Count(buf.String(), `"level":"WARN"`), "one warning per failure streak: %s", buf)
	assert.Contains(t, buf.String(), "vault:db/creds/app")
	assert.Contains(t, buf.String(), "backend down")

	clock.Advance(time.Minute) // now past Expires
	_, err = c.Credentials(t.Context())
	require.ErrorIs(t, err, ErrExpired)
	require.ErrorIs(t, err, ErrUnavailable)
	var be *testBackendError
	require.ErrorAs(t, err, &be)
	assert.Contains(t, err.Error(), "vault:db/creds/app")
	_, err = c.Credentials(t.Context())
	require.ErrorIs(t, err, ErrExpired, "stays expired while the backend is down")
}

// testBackendError stands for a backend's own error type, to check errors.As.
type testBackendError struct{ code int }

func (e *testBackendError) Error() string { return "status " + string(rune('0'+e.code/100)) + "xx" }

func TestCacheBackoffAfterFailure(t *testing.T) {
	clock := newClock()
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) {
		if n == 1 {
			return creds(n, time.Time{}), nil
		}
		return Credentials{}, ErrUnavailable
	})
	c := NewCache(src, clocked(clock))
	_, _ = c.Credentials(t.Context())
	clock.Advance(5 * time.Minute)
	_, _ = c.Credentials(t.Context()) // fails in the background; backs off 0.5 s (no jitter drawn)
	settle(t, c)
	for range 10 {
		_, err := c.Credentials(t.Context())
		require.NoError(t, err)
	}
	assert.Equal(t, int64(2), src.calls.Load(), "no fetch during the back-off")
	clock.Advance(time.Second)
	_, _ = c.Credentials(t.Context())
	settle(t, c)
	assert.Equal(t, int64(3), src.calls.Load())
}

func TestCacheErrorWithNothingCached(t *testing.T) {
	want := newError(ErrNotFound, "scripted", "no such secret", nil)
	src := newScripted(func(context.Context, int64) (Credentials, error) { return Credentials{}, want })
	c := NewCache(src, CacheOptions{})
	_, err := c.Credentials(t.Context())
	assert.Same(t, want, err)
	_, err = c.Credentials(t.Context())
	assert.Same(t, want, err)
	assert.Equal(t, int64(2), src.calls.Load(), "errors are not cached")
}

func TestCacheRejectsAlreadyExpiredCredentials(t *testing.T) {
	clock := newClock()
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, clock.Now()), nil })
	_, err := NewCache(src, clocked(clock)).Credentials(t.Context())
	require.ErrorIs(t, err, ErrExpired)
	assert.Contains(t, err.Error(), "scripted")
}

func TestCacheLogsFetchAndRefreshAtDebug(t *testing.T) {
	clock := newClock()
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, time.Time{}), nil })
	log, buf := logBuffer()
	o := clocked(clock)
	o.Logger = log
	c := NewCache(src, o)
	_, _ = c.Credentials(t.Context())
	clock.Advance(time.Hour)
	_, _ = c.Credentials(t.Context())
	settle(t, c)
	out := buf.String()
	assert.Contains(t, out, `"msg":"secret fetched","source":"scripted","version":"v1"`)
	assert.Contains(t, out, `"msg":"secret refreshed","source":"scripted","version":"v2"`)
	assert.Contains(t, out, `"ttl":300000000000`)
	assert.NotContains(t, out, testSecret)
}

func TestNewCacheNeverWrapsACache(t *testing.T) {
	c := NewCache(Static(creds(1, time.Time{})), CacheOptions{})
	assert.Same(t, c, NewCache(c, CacheOptions{TTL: time.Hour}))
	assert.Equal(t, "scripted", c.Name(), "named after its source")
}

func TestCacheCloseForwards(t *testing.T) {
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, time.Time{}), nil })
	require.NoError(t, NewCache(src, CacheOptions{}).Close(t.Context()))
	assert.Equal(t, 1, src.closed)
	require.NoError(t, NewCache(Env(), CacheOptions{}).Close(t.Context()), "a source without Close")
}

func TestCacheCallerContextAlreadyDone(t *testing.T) {
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, time.Time{}), nil })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := NewCache(src, CacheOptions{}).Credentials(ctx)
	require.True(t, errors.Is(err, context.Canceled))
	assert.Zero(t, src.calls.Load(), "no fetch for a caller that already gave up")
}

func TestCloseClosesOnlyClosers(t *testing.T) {
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, time.Time{}), nil })
	require.NoError(t, Close(t.Context(), NewCache(src, CacheOptions{})))
	assert.Equal(t, 1, src.closed, "a cached source is closed through its cache")
	require.NoError(t, Close(t.Context(), Env()), "a source that holds nothing is left alone")
}
