package proof

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newConns opens n new physical connections through pool one after the
// other (each is hijacked from the pool and closed), checks that each was
// verified against its node's own name, and counts them per node.
func newConns(t *testing.T, c *testutil.Cluster, pool *pgxpool.Pool, n int) []int {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	per := make([]int, len(c.Nodes))
	for range n {
		conn, err := pool.Acquire(ctx)
		require.NoError(t, err)
		func() {
			// Hijacked and closed even when a check fails, so that the pool can close.
			defer func() { _ = conn.Hijack().Close(ctx) }()
			per[verifiedNode(t, c, conn)]++
		}()
	}
	return per
}

// TestLoadBalanceHostsSpreadsAcrossStandbys: with load_balance_hosts=random
// and target_session_attrs=prefer-standby, new connections spread over both
// standbys and never reach the primary; with the default (disable) they all
// go to the first standby listed. With any, they spread over all three
// nodes. The distribution is logged for bench/RESULTS.md.
func TestLoadBalanceHostsSpreadsAcrossStandbys(t *testing.T) {
	t.Parallel()
	c := haCluster(t, testutil.ClusterOptions{Standbys: 2})
	ctx := ctxT(t, time.Minute)
	build := func(query string) *pgxpool.Pool {
		pool, err := pgsecure.NewBuilder(multiHostURL(c.Nodes, query)).RootCAFile(c.CAFile).Logger(quiet).Build(ctx)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool
	}
	const n = 60

	per := newConns(t, c, build("target_session_attrs=prefer-standby&load_balance_hosts=random"), n)
	t.Logf("prefer-standby, random: primary %d, standby 1 %d, standby 2 %d (of %d)", per[0], per[1], per[2], n)
	assert.Zero(t, per[0], "prefer-standby never picks the primary while a standby is up")
	// Binomial(60, 1/2): 12 is more than 4.6 standard deviations below 30.
	assert.GreaterOrEqual(t, per[1], 12)
	assert.GreaterOrEqual(t, per[2], 12)

	per = newConns(t, c, build("target_session_attrs=prefer-standby"), 20)
	assert.Equal(t, []int{0, 20, 0}, per, "without load balancing the first standby listed takes every connection")

	per = newConns(t, c, build("load_balance_hosts=random"), n)
	t.Logf("any, random: primary %d, standby 1 %d, standby 2 %d (of %d)", per[0], per[1], per[2], n)
	for i, k := range per {
		// Binomial(60, 1/3): 5 is more than 4.1 standard deviations below 20.
		assert.GreaterOrEqual(t, k, 5, "node %d", i)
	}
}

// TestFailoverUnderLoad: a pool on host=primary,standby with
// target_session_attrs=read-write carries a steady write load; the primary
// crashes (immediate shutdown) and the standby is promoted. The same pool
// recovers without a restart, every connection it opens is verified from both
// ends, every acknowledged write is on the new primary (synchronous
// replication), and after recovery no connection to the stopped node is
// handed out. The recovery time is logged for bench/RESULTS.md.
func TestFailoverUnderLoad(t *testing.T) {
	t.Parallel()
	testutil.SkipIfShort(t, "the failover under load")
	c := haCluster(t, testutil.ClusterOptions{Standbys: 1, Synchronous: true})
	primary, standby := c.Nodes[0], c.Nodes[1]
	primary.Exec(t, "CREATE TABLE writes (id bigint PRIMARY KEY, writer int NOT NULL)",
		"GRANT SELECT, INSERT ON writes TO "+appUser)
	c.WaitStreaming(t, 0)
	ctx := ctxT(t, 2*time.Minute)

	var reports sync.Map // backend address -> count of verified connections
	pool, err := pgsecure.NewBuilder(multiHostURL(c.Nodes, "target_session_attrs=read-write&connect_timeout=2")).
		RootCAFile(c.CAFile).Logger(quiet).MaxConns(4).
		AfterConnect(func(_ context.Context, conn *pgx.Conn) error {
			r, err := pgsecure.ConnReport(conn)
			if err != nil || !r.ServerProven() {
				return errors.New("connection handed to AfterConnect without a verified report")
			}
			n, _ := reports.LoadOrStore(r.Addr+" as "+r.ServerName, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			return nil
		}).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	var (
		seq    atomic.Int64
		mu     sync.Mutex
		acked  []int64
		failed atomic.Int64
		// unix nanos: the crash completed; the first write started after it
		// was acknowledged
		stoppedAt, firstAck atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := seq.Add(1)
				started := time.Now().UnixNano()
				wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := pool.Exec(wctx, "INSERT INTO writes (id, writer) VALUES ($1, $2)", id, w)
				cancel()
				if err != nil {
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if s := stoppedAt.Load(); s != 0 && started > s {
					firstAck.CompareAndSwap(0, time.Now().UnixNano())
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("writes before the failover", func() bool { return ackedCount() >= 200 })
	before := ackedCount()

	primary.Stop(t)
	stoppedAt.Store(time.Now().UnixNano())
	promoteStart := time.Now()
	standby.Promote(t)
	promoted := time.Now()
	// The crash is detected and the promotion ordered at once (an HA manager
	// such as Patroni adds its own detection time): what is measured is how
	// fast the pool finds the new primary.
	waitFor("a write acknowledged after the failover", func() bool { return firstAck.Load() != 0 })
	recovered := time.Unix(0, firstAck.Load())
	waitFor("writes after the failover", func() bool { return ackedCount() >= before+200 })
	close(stop)
	wg.Wait()

	// Every acknowledged write is on the new primary.
	mu.Lock()
	ids := append([]int64(nil), acked...)
	mu.Unlock()
	var missing int64
	admin, err := standby.Admin(ctx)
	require.NoError(t, err)
	defer admin.Close(ctx)
	require.NoError(t, admin.QueryRow(ctx,
		"SELECT count(*) FROM unnest($1::bigint[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM writes w WHERE w.id = a.id)", ids).Scan(&missing))
	assert.Zero(t, missing, "acknowledged writes lost in the failover")

	// After recovery, connections reach the new primary only.
	per := make(map[string]int)
	for range 20 {
		conn, err := pool.Acquire(ctx)
		require.NoError(t, err)
		var inRecovery bool
		require.NoError(t, conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery))
		r, err := pgsecure.ConnReport(conn.Conn())
		require.NoError(t, err)
		per[r.Addr]++
		assert.False(t, inRecovery)
		conn.Release()
	}
	assert.Equal(t, map[string]int{standby.Addr(): 20}, per, "no connection to the stopped node is handed out")

	verified := map[string]int64{}
	reports.Range(func(k, v any) bool { verified[k.(string)] = v.(*atomic.Int64).Load(); return true })
	assert.Subset(t, []string{primary.Addr() + " as " + primary.Host, standby.Addr() + " as " + standby.Host}, keysOf(verified),
		"every connection was verified against its own node's name")
	assert.Contains(t, verified, standby.Addr()+" as "+standby.Host, "the pool opened verified connections to the new primary")

	t.Logf("failover: %d writes acknowledged (%d before the crash), %d attempts failed during it; "+
		"pg_ctl promote took %s; the first write started after the crash was acknowledged %s after it; verified connections %v",
		len(ids), before, failed.Load(), promoted.Sub(promoteStart).Round(time.Millisecond),
		recovered.Sub(time.Unix(0, stoppedAt.Load())).Round(time.Millisecond), verified)
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestChurnAcrossCluster: a fixed number of connections is opened and
// closed, in rounds, across the three nodes (load_balance_hosts=random);
// every one is verified, and neither goroutines nor the heap grow between
// the first and the last round. Figures are logged for bench/RESULTS.md.
func TestChurnAcrossCluster(t *testing.T) {
	// Not parallel: it counts the whole process's goroutines and heap.
	testutil.SkipIfShort(t, "the connection churn soak")
	const rounds, perRound = 3, 40
	c := haCluster(t, testutil.ClusterOptions{Standbys: 2})
	ctx := ctxT(t, 2*time.Minute)
	baseline := settledGoroutines(0)
	var verified atomic.Int64
	pool, err := pgsecure.NewBuilder(multiHostURL(c.Nodes, "load_balance_hosts=random")).RootCAFile(c.CAFile).Logger(quiet).
		MaxConns(4).AfterConnect(func(_ context.Context, conn *pgx.Conn) error {
		if r, err := pgsecure.ConnReport(conn); err == nil && r.ServerProven() {
			verified.Add(1)
		}
		return nil
	}).Build(ctx)
	require.NoError(t, err)

	total := make([]int, len(c.Nodes))
	var heaps []uint64
	var goroutines []int
	start := time.Now()
	for range rounds {
		per := newConns(t, c, pool, perRound)
		for i := range per {
			total[i] += per[i]
		}
		heaps = append(heaps, heapInUse())
		goroutines = append(goroutines, settledGoroutines(0))
	}
	elapsed := time.Since(start)
	opened := pool.Stat().NewConnsCount()
	pool.Close()

	assert.EqualValues(t, opened, verified.Load(), "every connection the pool opened was verified")
	assert.EqualValues(t, rounds*perRound, total[0]+total[1]+total[2])
	const slack = 4 << 20
	assert.Less(t, heaps[rounds-1], heaps[0]+heaps[0]/4+slack, "heap in use per round: %v", heaps)
	assert.LessOrEqual(t, goroutines[rounds-1], goroutines[0], "goroutines per round: %v", goroutines)
	after := settledGoroutines(baseline)
	assert.LessOrEqual(t, after, baseline, "goroutines leaked: %d before the pool, %d after Close", baseline, after)
	t.Logf("churn: %d connections in %s (%s each), per node %v, heap in use per round %v, goroutines per round %v, %d -> %d after Close",
		opened, elapsed.Round(time.Millisecond), (elapsed / time.Duration(rounds*perRound)).Round(time.Microsecond),
		total, heaps, goroutines, baseline, after)
}
