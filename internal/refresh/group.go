package refresh

import (
	"context"
	"sync"
	"time"
)

// Group runs at most one refresh at a time; concurrent callers share its
// result. The refresh runs in its own goroutine, detached from the
// cancellation of the caller that started it (context.WithoutCancel) and
// bounded by its own timeout, so one caller giving up fails nobody else. No
// lock is held while it runs. The zero Group is ready to use.
type Group[T any] struct {
	mu  sync.Mutex
	cur *call[T]
}

type call[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// Ready reports a value that needs no refresh (ok), or an error that makes
// refreshing pointless (err). It runs with the Group's lock held, so a
// refresh that installs its result before returning is never repeated by a
// caller that raced it.
type Ready[T any] func() (val T, ok bool, err error)

// Do returns ready's answer when it has one; otherwise it joins the refresh
// in flight or starts fn, and waits for it or for ctx to end (then it
// returns ctx's cause). timeout bounds fn; zero means no bound beyond ctx's
// values (its deadline is dropped with its cancellation).
func (g *Group[T]) Do(ctx context.Context, ready Ready[T], timeout time.Duration, fn func(context.Context) (T, error)) (T, error) {
	c, val, err := g.start(ctx, ready, timeout, fn)
	if c == nil {
		return val, err
	}
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}

// Go starts fn like Do but does not wait for it. It reports whether a
// refresh is (now) in flight.
func (g *Group[T]) Go(ctx context.Context, ready Ready[T], timeout time.Duration, fn func(context.Context) (T, error)) bool {
	c, _, _ := g.start(ctx, ready, timeout, fn)
	return c != nil
}

// InFlight reports whether a refresh is running.
func (g *Group[T]) InFlight() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur != nil
}

func (g *Group[T]) start(ctx context.Context, ready Ready[T], timeout time.Duration, fn func(context.Context) (T, error)) (*call[T], T, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur != nil {
		var zero T
		return g.cur, zero, nil
	}
	if ready != nil {
		if v, ok, err := ready(); ok || err != nil {
			return nil, v, err
		}
	}
	c := &call[T]{done: make(chan struct{})}
	g.cur = c
	go g.run(context.WithoutCancel(ctx), c, timeout, fn)
	var zero T
	return c, zero, nil
}

func (g *Group[T]) run(ctx context.Context, c *call[T], timeout time.Duration, fn func(context.Context) (T, error)) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	c.val, c.err = fn(ctx)
	g.mu.Lock()
	g.cur = nil
	g.mu.Unlock()
	close(c.done)
}
