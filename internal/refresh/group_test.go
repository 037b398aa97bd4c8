package refresh

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGroupSharesOneRefresh(t *testing.T) {
	var g Group[int]
	var mu sync.Mutex
	state := 0
	var calls atomic.Int32
	release := make(chan struct{})
	ready := func() (int, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return state, state != 0, nil
	}
	fn := func(context.Context) (int, error) {
		calls.Add(1)
		<-release
		mu.Lock()
		state = 42
		mu.Unlock()
		return 42, nil
	}
	const n = 8
	results := make(chan int, n)
	for range n {
		go func() {
			v, err := g.Do(context.Background(), ready, 0, fn)
			assert.NoError(t, err)
			results <- v
		}()
	}
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range n {
		assert.Equal(t, 42, <-results)
	}
	assert.Equal(t, int32(1), calls.Load(), "one refresh for all concurrent callers")
	v, err := g.Do(context.Background(), ready, 0, fn)
	require.NoError(t, err)
	assert.Equal(t, 42, v, "ready answers once the refresh installed its result")
	assert.Equal(t, int32(1), calls.Load())
}

// TestGroupCallerCancellationFailsNobodyElse: the refresh runs detached from
// the caller that started it; that caller returns at once when its context
// ends, the others get the result.
func TestGroupCallerCancellationFailsNobodyElse(t *testing.T) {
	var g Group[string]
	leaderCtx, cancel := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var installed atomic.Value // what the refresh installed, for late callers
	var fnErr atomic.Value
	ready := func() (string, bool, error) {
		v, ok := installed.Load().(string)
		return v, ok, nil
	}
	fn := func(ctx context.Context) (string, error) {
		once.Do(func() { close(started) })
		<-release
		fnErr.Store(fmt.Sprint(ctx.Err()))
		installed.Store("fresh")
		return "fresh", nil
	}
	leaderDone := make(chan error, 1)
	go func() { _, err := g.Do(leaderCtx, ready, time.Minute, fn); leaderDone <- err }()
	<-started
	waiterDone := make(chan string, 1)
	go func() {
		v, err := g.Do(context.Background(), ready, time.Minute, fn)
		assert.NoError(t, err)
		waiterDone <- v
	}()
	cancel()
	require.ErrorIs(t, <-leaderDone, context.Canceled, "the leader returns as soon as its own context ends")
	close(release)
	assert.Equal(t, "fresh", <-waiterDone)
	assert.Equal(t, "<nil>", fnErr.Load(), "the refresh's context was not cancelled with the leader's")
}

func TestGroupTimeoutBoundsTheRefresh(t *testing.T) {
	var g Group[int]
	_, err := g.Do(context.Background(), nil, time.Millisecond, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestGroupReadyError(t *testing.T) {
	var g Group[int]
	boom := errors.New("closed")
	_, err := g.Do(context.Background(), func() (int, bool, error) { return 0, false, boom }, 0,
		func(context.Context) (int, error) { t.Fatal("refresh must not run"); return 0, nil })
	require.ErrorIs(t, err, boom)
	assert.False(t, g.Go(context.Background(), func() (int, bool, error) { return 1, true, nil }, 0,
		func(context.Context) (int, error) { t.Fatal("refresh must not run"); return 0, nil }), "ready: nothing started")
}

func TestScheduleAndBackoff(t *testing.T) {
	t0 := time.Unix(0, 0)
	s := For(t0, t0.Add(90*time.Second), 0)
	assert.Equal(t, 60*time.Second, s.Advisory.Sub(t0), "two thirds of the lifetime")
	assert.Equal(t, 81*time.Second, s.Mandatory.Sub(t0), "a tenth before the end")
	assert.Equal(t, 55500*time.Millisecond, RenewDelay(90*time.Second, 0.5))
	assert.Greater(t, RenewDelay(90*time.Second, 0.999999), 51*time.Second, "jitter never goes below 17/30")
	assert.Equal(t, MinMargin, Margin(5*time.Second), "at least MinMargin")
	assert.Equal(t, 6*time.Minute, Margin(time.Hour))
	assert.Equal(t, time.Second, Margin(time.Second), "never more than the lifetime")
	now := time.Unix(100, 0)
	assert.True(t, Usable(time.Time{}, now), "no expiry")
	assert.True(t, Usable(now.Add(MinMargin+time.Nanosecond), now))
	assert.False(t, Usable(now.Add(MinMargin), now), "too soon to open a connection with")
	assert.Equal(t, 500*time.Millisecond, Backoff(1, 0))
	assert.Equal(t, 2*time.Second, Backoff(3, 0))
	assert.Less(t, Backoff(3, 0.9999), 4*time.Second)
	assert.Equal(t, 15*time.Second, Backoff(6, 0), "capped at 30 s before jitter")
	assert.Equal(t, 15*time.Second, Backoff(100, 0))
}

// TestLoginBackoff: login rounds during a half-done rotation wait 100 ms
// doubling up to MaxLoginBackoff, each scaled into [d/2, d).
func TestLoginBackoff(t *testing.T) {
	assert.Equal(t, 50*time.Millisecond, LoginBackoff(1, 0))
	assert.Equal(t, 200*time.Millisecond, LoginBackoff(3, 0))
	assert.Equal(t, MaxLoginBackoff/2, LoginBackoff(5, 0))
	assert.Equal(t, MaxLoginBackoff/2, LoginBackoff(50, 0), "bounded")
	assert.Less(t, LoginBackoff(50, 0.999), MaxLoginBackoff)
	assert.Equal(t, MaxLoginBackoff/2, LoginBackoff(0, 0), "out of range: the bound")
}
