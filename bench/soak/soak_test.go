package soak

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const soakUser = "soak"

// mode is how long and how hard the soak runs.
type mode struct {
	workers        int           // per pool
	steady, settle time.Duration // before each fault; after it ends
	lifetime       time.Duration // pool_max_conn_lifetime: connections churn, so rotations meet new ones
}

var modes = map[string]mode{
	"smoke": {workers: 8, steady: 2 * time.Second, settle: 3 * time.Second, lifetime: 3 * time.Second},
	"full":  {workers: 16, steady: 10 * time.Second, settle: 15 * time.Second, lifetime: 5 * time.Second},
}

// side is one pool under test with its own fault proxy.
type side struct {
	name  string
	proxy *testutil.FaultProxy
	pool  *pgxpool.Pool
	seq   []int
}

// rig is the server, its PKI, the mounted secret and both sides.
type rig struct {
	t        *testing.T
	m        mode
	pki      *testutil.PKI
	pg       *testutil.Postgres
	secret   *testutil.KubeSecret
	rotation int
	sides    []*side
}

// scenario injects one fault into both sides at once; fault returns when
// the fault is over (at once for an instantaneous one). deadlines marks
// the scenarios in which operations end by their context's deadline on
// established connections (issue 24's first finding): there pgsecure must
// never report a COMMIT that committed as safe to retry.
type scenario struct {
	name      string
	fault     func(r *rig)
	deadlines bool
}

var scenarios = []scenario{
	{"server restart", func(r *rig) { r.pg.Restart(r.t) }, false},
	{"pg_terminate_backend", func(r *rig) {
		r.pg.Exec(r.t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '"+soakUser+"'")
	}, false},
	{"password rotation, secret first", func(r *rig) {
		pw := r.nextPassword()
		r.writeSecret(pw)
		time.Sleep(time.Second)
		r.alterRole(pw)
	}, false},
	{"password rotation, database first", func(r *rig) {
		pw := r.nextPassword()
		r.alterRole(pw)
		time.Sleep(time.Second)
		r.writeSecret(pw)
	}, false},
	{"server certificate rotation", func(r *rig) {
		_, _, pair := r.pki.Server(r.t, testutil.LocalServerOptions())
		r.pg.SetServerCert(r.t, pair.CertPEM, pair.KeyPEM)
	}, false},
	{"slow COMMITs (server stalls them 6 s, for 3 s)", func(r *rig) { // past opTimeout: the client gives up, the server commits
		r.pg.Exec(r.t, "UPDATE soak_slow SET on_commit = true")
		time.Sleep(3 * time.Second)
		r.pg.Exec(r.t, "UPDATE soak_slow SET on_commit = false")
	}, true},
	{"network latency 200 ms for 2 s", func(r *rig) {
		r.eachProxy(func(p *testutil.FaultProxy) { p.SetLatency(200 * time.Millisecond) })
		time.Sleep(2 * time.Second)
		r.eachProxy(func(p *testutil.FaultProxy) { p.SetLatency(0) })
	}, true},
	{"network reset (all connections cut)", func(r *rig) { r.eachProxy((*testutil.FaultProxy).Cut) }, false},
	{"network black hole for 6 s", func(r *rig) { // longer than opTimeout and connect_timeout
		r.eachProxy(func(p *testutil.FaultProxy) { p.SetStall(true); p.SetBlackhole(true) })
		time.Sleep(6 * time.Second)
		r.eachProxy(func(p *testutil.FaultProxy) { p.SetBlackhole(false); p.SetStall(false) })
	}, true},
}

// TestSoak runs every scenario against pgsecure and raw pgx side by side
// and prints the table. It asserts the invariants: no acknowledged commit
// is lost, pgsecure never calls a COMMIT that committed safe to retry when
// a deadline interrupted it, and both pools serve again after every fault.
func TestSoak(t *testing.T) {
	m, ok := modes[os.Getenv("SOAK")]
	if !ok {
		t.Skip("the soak runs only when asked: SOAK=smoke or SOAK=full (see package doc)")
	}
	r := newRig(t, m)
	var rows []string
	var resources []string
	for _, sc := range scenarios {
		if only := os.Getenv("SOAK_ONLY"); only != "" && !strings.Contains(sc.name, only) { // e.g. SOAK_ONLY=rotation
			continue
		}
		before := sample()
		loads := make([]*load, len(r.sides))
		stop := make(chan struct{})
		var waits []func()
		for i, s := range r.sides {
			loads[i] = newLoad()
			wg := loads[i].run(s.pool, s.name, m.workers, s.seq, stop)
			waits = append(waits, wg.Wait)
		}
		time.Sleep(m.steady)
		faultStart := time.Now()
		sc.fault(r)
		faultEnd := time.Now().Add(time.Second) // the second after it counts as "during"
		time.Sleep(m.settle)
		close(stop)
		for _, w := range waits {
			w()
		}
		r.recovered(sc.name)
		present := r.ledger()
		after := sample()
		resources = append(resources, fmt.Sprintf("| %s | %d → %d | %d → %d | %.1f → %.1f |",
			sc.name, before.goroutines, after.goroutines, before.fds, after.fds, before.heapMB, after.heapMB))
		for i, s := range r.sides {
			sum := loads[i].summarize(present, faultStart, faultEnd)
			rows = append(rows, row(sc.name, s.name, sum))
			assert.Zero(t, sum.lost, "%s, %s: acknowledged commits lost", sc.name, s.name)
			if s.name == "pgsecure" && sc.deadlines {
				assert.Zero(t, sum.safeToRetryButCommitted, "%s, %s: a COMMIT that committed was reported SafeToRetry: %v", sc.name, s.name, sum.retryLies)
			}
			if len(sum.retryLies) > 0 {
				// Seen under connection resets for raw pgx too: reported,
				// not failed on (see RESULTS.md).
				t.Logf("%s, %s: COMMITs that committed although their error said SafeToRetry: %v", sc.name, s.name, sum.retryLies)
			}
			if sum.failed > 0 {
				t.Logf("%s, %s: most frequent error: %s", sc.name, s.name, sum.topErr)
			}
		}
	}
	table := fmt.Sprintf("SOAK=%s: %d workers per pool, %s steady, %s after each fault, pool_max_conn_lifetime %s, op timeout %s, Go %s, %d CPUs\n\n",
		os.Getenv("SOAK"), m.workers, m.steady, m.settle, m.lifetime, opTimeout, runtime.Version(), runtime.NumCPU()) +
		"| scenario | pool | ops | failed | acked lost | failed COMMITs that committed | of those SafeToRetry | recovery | p50 steady | p99 steady | p50 fault | p99 fault |\n" +
		"|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" +
		strings.Join(rows, "\n") + "\n\n" +
		"| scenario | goroutines | open fds | heap MB |\n|---|---|---|---|\n" + strings.Join(resources, "\n") + "\n"
	t.Log("\n" + table)
	if out := os.Getenv("SOAK_OUT"); out != "" {
		require.NoError(t, os.WriteFile(out, []byte(table), 0o644))
	}
}

func row(scenario, pool string, s summary) string {
	ms := func(d time.Duration) string {
		if d == 0 {
			return "–" // no operation succeeded in that window
		}
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s |", scenario, pool, s.attempted, s.failed,
		s.lost, s.committedUnacked, s.safeToRetryButCommitted, s.recovery.Round(time.Millisecond),
		ms(s.p50Steady), ms(s.p99Steady), ms(s.p50Fault), ms(s.p99Fault))
}

var quiet = slog.New(slog.DiscardHandler)

func newRig(t *testing.T, m mode) *rig {
	pki := testutil.NewPKI(t)
	_, _, pair := pki.Server(t, testutil.LocalServerOptions())
	pg := testutil.StartPostgres(t, testutil.PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: pair.KeyPEM})
	r := &rig{t: t, m: m, pki: pki, pg: pg}
	pw := r.nextPassword()
	pg.CreateRole(t, soakUser, pw)
	pg.Exec(t, "CREATE TABLE ledger (pool text, worker int, seq int, PRIMARY KEY (pool, worker, seq))",
		"GRANT SELECT, INSERT ON ledger TO "+soakUser,
		// A deferred constraint trigger that, while switched on, makes
		// every COMMIT of the ledger wait 6 s on the server and then
		// commit even if the client cancelled it meanwhile (as when the
		// cancel request is lost on the way): the client's COMMIT fails
		// although the transaction commits.
		"CREATE TABLE soak_slow (on_commit bool NOT NULL)", "INSERT INTO soak_slow VALUES (false)",
		"GRANT SELECT ON soak_slow TO "+soakUser,
		`CREATE FUNCTION soak_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN
		   IF (SELECT on_commit FROM soak_slow) THEN
		     BEGIN PERFORM pg_sleep(6); EXCEPTION WHEN query_canceled THEN NULL; END;
		   END IF;
		   RETURN NULL;
		 END $$`,
		"CREATE CONSTRAINT TRIGGER soak_slow_commit AFTER INSERT ON ledger DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION soak_slow_commit()")
	r.secret = testutil.NewKubeSecret(t, map[string]string{"username": soakUser, "password": pw + "\n"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	secure := &side{name: "pgsecure", proxy: testutil.NewFaultProxy(t, pg.Addr()), seq: make([]int, m.workers)}
	var err error
	secure.pool, err = pgsecure.NewBuilder(fmt.Sprintf("postgres://%s@localhost:%d/postgres?connect_timeout=5&pool_max_conn_lifetime=%s",
		soakUser, secure.proxy.Port, m.lifetime)).RootCAFile(pki.CAFile).Logger(quiet).MaxConns(int32(m.workers)).
		Credentials(secrets.File(r.secret.Dir)).Build(ctx)
	require.NoError(t, err)
	t.Cleanup(secure.pool.Close)

	// Raw pgx the way an application without pgsecure would do it:
	// verify-full with the same CA, the password read from the same mounted
	// secret for each new connection.
	raw := &side{name: "raw pgx", proxy: testutil.NewFaultProxy(t, pg.Addr()), seq: make([]int, m.workers)}
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("postgres://%s@localhost:%d/postgres?sslmode=verify-full&sslrootcert=%s&connect_timeout=5&pool_max_conn_lifetime=%s&pool_max_conns=%d",
		soakUser, raw.proxy.Port, pki.CAFile, m.lifetime, m.workers))
	require.NoError(t, err)
	passwordFile := filepath.Join(r.secret.Dir, "password")
	cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		b, err := os.ReadFile(passwordFile)
		cc.Password = strings.TrimRight(string(b), "\r\n")
		return err
	}
	raw.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(raw.pool.Close)
	require.NoError(t, raw.pool.Ping(ctx))

	r.sides = []*side{secure, raw}
	return r
}

func (r *rig) nextPassword() string {
	r.rotation++
	return fmt.Sprintf("Soak-Rotation-%d-7c2e91", r.rotation)
}

func (r *rig) writeSecret(pw string) {
	r.secret.Update(r.t, map[string]string{"username": soakUser, "password": pw + "\n"})
}

func (r *rig) alterRole(pw string) {
	r.pg.Exec(r.t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", soakUser, pw))
}

func (r *rig) eachProxy(fn func(*testutil.FaultProxy)) {
	for _, s := range r.sides {
		fn(s.proxy)
	}
}

// recovered fails the test unless both pools serve again within 30 s.
func (r *rig) recovered(scenario string) {
	for _, s := range r.sides {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		for ctx.Err() == nil {
			if err = s.pool.Ping(ctx); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		assert.NoError(r.t, err, "%s: %s does not serve again", scenario, s.name)
	}
}

// ledger reads every row the server has committed.
func (r *rig) ledger() map[key]bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := r.pg.Admin(ctx)
	require.NoError(r.t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT pool, worker, seq FROM ledger")
	require.NoError(r.t, err)
	present := map[key]bool{}
	for rows.Next() {
		var k key
		require.NoError(r.t, rows.Scan(&k.pool, &k.worker, &k.seq))
		present[k] = true
	}
	require.NoError(r.t, rows.Err())
	return present
}

// resources is the process's footprint at one moment.
type resources struct {
	goroutines, fds int
	heapMB          float64
}

func sample() resources {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds := -1
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(entries)
	}
	return resources{goroutines: runtime.NumGoroutine(), fds: fds, heapMB: float64(ms.HeapAlloc) / (1 << 20)}
}
