package testutil

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is what QueryLoad queries: a pool, a connection.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// QueryLoad runs "SELECT 1" from workers goroutines, each pausing 20 ms
// between queries, for d; it logs each failure and returns how many queries
// succeeded and failed.
func QueryLoad(ctx context.Context, t testing.TB, q Querier, workers int, d time.Duration) (ok, failed int64) {
	var nOK, nFailed atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				var one int
				if err := q.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
					nFailed.Add(1)
					t.Logf("query failed under load: %v", err)
				} else {
					nOK.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return nOK.Load(), nFailed.Load()
}
