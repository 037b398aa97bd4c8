package secrets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

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

func TestCacheRefreshesEarly(t *testing.T) {
	clock := newClock()
	t0 := clock.Now()
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) {
		return creds(n, clock.Now().Add(30*time.Minute)), nil
	})
	c := NewCache(src, CacheOptions{Now: clock.Now, Jitter: -1})

	got, err := c.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "v1", got.Version)
	// Default RefreshBefore: min(30m/3, 5m) = 5 min before expiry.
	clock.Advance(25*time.Minute - time.Nanosecond)
	got, _ = c.Credentials(t.Context())
	assert.Equal(t, "v1", got.Version, "served from cache before the refresh point")
	clock.Advance(time.Nanosecond)
	got, err = c.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "v2", got.Version, "refreshed 5 min before expiry")
	assert.Equal(t, t0.Add(55*time.Minute), got.Expires)
	assert.Equal(t, int64(2), src.calls.Load())
}

func TestCacheRefreshBeforeOptionAndCap(t *testing.T) {
	clock := newClock()
	life := 10 * time.Minute
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, clock.Now().Add(life)), nil })
	c := NewCache(src, CacheOptions{Now: clock.Now, Jitter: -1, RefreshBefore: 2 * time.Minute})
	_, err := c.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, clock.Now().Add(8*time.Minute), c.cur.Load().refreshAt)

	// RefreshBefore longer than the lifetime is capped at half of it.
	c = NewCache(newScripted(src.fn), CacheOptions{Now: clock.Now, Jitter: -1, RefreshBefore: time.Hour})
	_, err = c.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, clock.Now().Add(5*time.Minute), c.cur.Load().refreshAt)
}

func TestCacheTTLWithoutExpiry(t *testing.T) {
	clock := newClock()
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, time.Time{}), nil })
	c := NewCache(src, CacheOptions{Now: clock.Now, Jitter: -1})
	_, err := c.Credentials(t.Context())
	require.NoError(t, err)
	clock.Advance(5*time.Minute - time.Nanosecond)
	got, _ := c.Credentials(t.Context())
	assert.Equal(t, "v1", got.Version)
	clock.Advance(time.Nanosecond)
	got, _ = c.Credentials(t.Context())
	assert.Equal(t, "v2", got.Version, "default TTL is 5 min")
}

func TestCacheJitterBounds(t *testing.T) {
	clock := newClock()
	expires := clock.Now().Add(time.Hour)
	const before = 4 * time.Minute
	for _, tc := range []struct {
		name   string
		jitter float64
		rand   func() float64
		lo, hi time.Duration // refresh point, as offset before expiry
	}{
		{"no jitter drawn", 0.5, func() float64 { return 0 }, before, before},
		{"largest draw", 0.5, func() float64 { return 1 }, before * 3 / 2, before * 3 / 2},
		{"default fraction", 0, func() float64 { return 1 }, before * 11 / 10, before * 11 / 10},
		{"disabled", -1, func() float64 { return 1 }, before, before},
		{"clamped to 1", 7, func() float64 { return 1 }, 2 * before, 2 * before},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(Static(creds(1, expires)), CacheOptions{Now: clock.Now, RefreshBefore: before, Jitter: tc.jitter})
			c.rand = tc.rand
			at := c.refreshAt(creds(1, expires), clock.Now())
			assert.Equal(t, tc.hi, expires.Sub(at))
		})
	}
	t.Run("real random draws stay in bounds", func(t *testing.T) {
		c := NewCache(Static(creds(1, expires)), CacheOptions{Now: clock.Now, RefreshBefore: before, Jitter: 0.25})
		ttl := NewCache(Static(creds(1, time.Time{})), CacheOptions{Now: clock.Now, TTL: time.Minute, Jitter: 0.25})
		distinct := map[time.Time]bool{}
		for range 1000 {
			at := c.refreshAt(creds(1, expires), clock.Now())
			require.GreaterOrEqual(t, expires.Sub(at), before)
			require.LessOrEqual(t, expires.Sub(at), before*5/4)
			distinct[at] = true
			at = ttl.refreshAt(creds(1, time.Time{}), clock.Now())
			require.GreaterOrEqual(t, at.Sub(clock.Now()), time.Minute*3/4)
			require.LessOrEqual(t, at.Sub(clock.Now()), time.Minute)
		}
		assert.Greater(t, len(distinct), 100, "refresh points are spread")
	})
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
	assert.Equal(t, "v1", (<-done).Version)
	got, err := c.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "v2", got.Version, "credentials fetched across an invalidation are not trusted")
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
	c := NewCache(src, CacheOptions{Now: clock.Now, Jitter: -1, Logger: log, Name: "vault:db/creds/app"})
	v1, err := c.Credentials(t.Context())
	require.NoError(t, err)

	clock.Advance(9 * time.Minute) // past the refresh point (10m/3 before expiry)
	for i := range 5 {
		got, err := c.Credentials(t.Context())
		require.NoError(t, err, "attempt %d", i)
		assert.Equal(t, v1, got)
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
	c := NewCache(src, CacheOptions{Now: clock.Now, Jitter: -1})
	_, _ = c.Credentials(t.Context())
	clock.Advance(5 * time.Minute)
	_, _ = c.Credentials(t.Context()) // fails; backs off 1 s
	for range 10 {
		_, err := c.Credentials(t.Context())
		require.NoError(t, err)
	}
	assert.Equal(t, int64(2), src.calls.Load(), "no fetch during the back-off")
	clock.Advance(time.Second)
	_, _ = c.Credentials(t.Context())
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
	_, err := NewCache(src, CacheOptions{Now: clock.Now}).Credentials(t.Context())
	require.ErrorIs(t, err, ErrExpired)
	assert.Contains(t, err.Error(), "scripted")
}

func TestCacheLogsFetchAndRefreshAtDebug(t *testing.T) {
	clock := newClock()
	src := newScripted(func(_ context.Context, n int64) (Credentials, error) { return creds(n, time.Time{}), nil })
	log, buf := logBuffer()
	c := NewCache(src, CacheOptions{Now: clock.Now, Logger: log})
	_, _ = c.Credentials(t.Context())
	clock.Advance(time.Hour)
	_, _ = c.Credentials(t.Context())
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
	assert.Equal(t, "mine", NewCache(c.src, CacheOptions{Name: "mine"}).Name())
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
