// Package soak runs a steady query load through a pool while a test rotates
// its credentials, and reports what the pool's users saw: how many queries
// failed and the longest time a caller waited in Acquire.
package soak

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Result is what the load saw.
type Result struct {
	Queries        int64
	Failed         int64
	FirstErrors    []string // up to three, for the test log
	LongestAcquire time.Duration
	Elapsed        time.Duration
}

// String is one line for logs and the results table.
func (r Result) String() string {
	return fmt.Sprintf("queries=%d failed=%d longest_acquire=%s elapsed=%s",
		r.Queries, r.Failed, r.LongestAcquire.Round(time.Millisecond), r.Elapsed.Round(time.Second))
}

// Run starts workers goroutines that each acquire a connection, run
// "SELECT 1" and release it, pausing pause between queries, and runs rotate
// meanwhile; when rotate returns it stops the load and reports. Each
// query gets its own timeout (30 s) so a hang shows up as a failure.
func Run(ctx context.Context, pool *pgxpool.Pool, workers int, pause time.Duration, rotate func()) Result {
	var (
		queries, failed atomic.Int64
		longest         atomic.Int64
		mu              sync.Mutex
		firstErrs       []string
		wg              sync.WaitGroup
	)
	stop := make(chan struct{})
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := query(ctx, pool, &longest)
				queries.Add(1)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if len(firstErrs) < 3 {
						firstErrs = append(firstErrs, err.Error())
					}
					mu.Unlock()
				}
				select {
				case <-stop:
					return
				case <-time.After(pause):
				}
			}
		})
	}
	rotate()
	close(stop)
	wg.Wait()
	return Result{Queries: queries.Load(), Failed: failed.Load(), FirstErrors: firstErrs,
		LongestAcquire: time.Duration(longest.Load()), Elapsed: time.Since(start)}
}

func query(ctx context.Context, pool *pgxpool.Pool, longest *atomic.Int64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t0 := time.Now()
	c, err := pool.Acquire(ctx)
	waited := int64(time.Since(t0))
	for {
		cur := longest.Load()
		if waited <= cur || longest.CompareAndSwap(cur, waited) {
			break
		}
	}
	if err != nil {
		return err
	}
	defer c.Release()
	var one int
	return c.QueryRow(ctx, "SELECT 1").Scan(&one)
}
