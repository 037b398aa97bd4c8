package vault

import (
	"context"
	"errors"
	"sync"
)

// flight is one in-progress call whose result concurrent callers share.
type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// single lets one caller at a time (the leader) refresh some state that mu
// guards, while concurrent callers wait for the leader's result. No lock is
// held while the leader works.
type single[T any] struct {
	mu  *sync.Mutex
	cur *flight[T] // guarded by mu
}

// maxFlightRetries bounds how often a waiter takes over after leaders whose
// contexts ended.
const maxFlightRetries = 3

// do returns ready's answer when it has one (ok or a non-nil error); ready
// runs with mu held. Otherwise it runs refresh, once for all concurrent
// callers; refresh runs without mu and must itself lock mu to install what it
// obtained. A waiter whose leader gave up because the leader's own context
// ended tries again with its own context.
func (s *single[T]) do(ctx context.Context, ready func() (T, bool, error), refresh func(context.Context) (T, error)) (T, error) {
	for i := 0; ; i++ {
		s.mu.Lock()
		if v, ok, err := ready(); ok || err != nil {
			s.mu.Unlock()
			return v, err
		}
		f, leader := s.cur, s.cur == nil
		if leader {
			f = &flight[T]{done: make(chan struct{})}
			s.cur = f
		}
		s.mu.Unlock()

		if leader {
			f.val, f.err = refresh(ctx)
			s.mu.Lock()
			s.cur = nil
			s.mu.Unlock()
			close(f.done)
			return f.val, f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
		if !isContextErr(f.err) || ctx.Err() != nil || i >= maxFlightRetries {
			return f.val, f.err
		}
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
