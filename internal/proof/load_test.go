package proof

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoad runs goroutines × queries over TLS through one pool in two
// halves: no query fails, the heap in use after the second half is not
// much larger than after the first, and closing the pool leaves no
// goroutine behind.
func TestLoad(t *testing.T) {
	// Not parallel: it counts the whole process's goroutines and heap.
	testutil.SkipIfShort(t, "the load test")
	const goroutines, queries = 16, 200
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	ctx := ctxT(t, 3*time.Minute)
	baseline := settledGoroutines(0)

	pool, err := pgsecure.NewBuilder(dsn("localhost", pg.Port, "")).RootCAFile(pki.CAFile).Logger(quiet).
		MaxConns(8).Build(ctx)
	require.NoError(t, err)

	var errs atomic.Int64
	half := func() {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range queries / 2 {
					var got int
					if err := pool.QueryRow(ctx, "SELECT $1::int", g*queries+i).Scan(&got); err != nil || got != g*queries+i {
						errs.Add(1)
					}
				}
			}()
		}
		wg.Wait()
	}
	half()
	heap1 := heapInUse()
	half()
	heap2 := heapInUse()
	stat := pool.Stat()
	pool.Close()

	assert.Zero(t, errs.Load(), "queries failed")
	assert.EqualValues(t, goroutines*queries, stat.AcquireCount()-1, "every query went through the pool") // -1: Build's ping
	assert.LessOrEqual(t, stat.NewConnsCount(), int64(8))
	const slack = 8 << 20
	assert.Less(t, heap2, heap1+heap1/2+slack, "heap in use grew from %d to %d bytes", heap1, heap2)
	after := settledGoroutines(baseline)
	assert.LessOrEqual(t, after, baseline, "goroutines leaked: %d before the pool, %d after Close", baseline, after)
	t.Logf("%d queries, %d connections, heap in use %d -> %d bytes, goroutines %d -> %d",
		goroutines*queries, stat.NewConnsCount(), heap1, heap2, baseline, after)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// settledGoroutines waits (at most 10 s) for the goroutine count to fall to
// target, and returns the count; target 0 waits for the count to stop
// changing.
func settledGoroutines(target int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prev := runtime.NumGoroutine()
	for {
		select {
		case <-ctx.Done():
			return runtime.NumGoroutine()
		case <-time.After(50 * time.Millisecond):
		}
		n := runtime.NumGoroutine()
		if (target > 0 && n <= target) || (target == 0 && n == prev) {
			return n
		}
		prev = n
	}
}
