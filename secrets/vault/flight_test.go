package vault

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSingleSharesOneRefresh(t *testing.T) {
	var mu sync.Mutex
	g := single[int]{mu: &mu}
	state := 0
	var calls atomic.Int32
	release := make(chan struct{})
	ready := func() (int, bool, error) { return state, state != 0, nil }
	refresh := func(context.Context) (int, error) {
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
			v, err := g.do(context.Background(), ready, refresh)
			assert.NoError(t, err)
			results <- v
		}()
	}
	// Wait until a leader is running, then let it finish.
	for calls.Load() == 0 {
		runtime.Gosched()
	}
	close(release)
	for range n {
		assert.Equal(t, 42, <-results)
	}
	assert.Equal(t, int32(1), calls.Load(), "one refresh for all concurrent callers")
}

func TestSingleWaiterTakesOverFromCancelledLeader(t *testing.T) {
	var mu sync.Mutex
	g := single[string]{mu: &mu}
	leaderCtx, cancel := context.WithCancel(context.Background())
	started, joined := make(chan struct{}), make(chan struct{})
	calls := 0
	ready := func() (string, bool, error) { // runs under mu
		if calls++; calls == 2 {
			close(joined) // the waiter joins the leader's flight before releasing mu
		}
		return "", false, nil
	}

	leaderDone := make(chan error, 1)
	go func() {
		_, err := g.do(leaderCtx, ready, func(ctx context.Context) (string, error) {
			close(started)
			<-ctx.Done()
			return "", ctx.Err()
		})
		leaderDone <- err
	}()
	<-started
	waiterDone := make(chan string, 1)
	go func() {
		v, err := g.do(context.Background(), ready, func(context.Context) (string, error) { return "mine", nil })
		assert.NoError(t, err)
		waiterDone <- v
	}()
	<-joined
	cancel()
	require.ErrorIs(t, <-leaderDone, context.Canceled)
	assert.Equal(t, "mine", <-waiterDone, "the waiter refreshes itself instead of inheriting the leader's cancellation")
}

func TestSingleReadyError(t *testing.T) {
	var mu sync.Mutex
	g := single[int]{mu: &mu}
	boom := errors.New("closed")
	_, err := g.do(context.Background(), func() (int, bool, error) { return 0, false, boom },
		func(context.Context) (int, error) { t.Fatal("refresh must not run"); return 0, nil })
	require.ErrorIs(t, err, boom)
}
