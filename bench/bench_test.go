package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/pgsecure/pgsecure/verify"
)

const (
	user     = "bench"
	password = "Bench-Pw-4e1d09"
)

// env is one PostgreSQL server with a certificate (SAN localhost, so raw
// pgx's verify-full accepts it too) shared by every benchmark of the run.
type env struct {
	pg     *testutil.Postgres
	dir    string
	caFile string
}

var (
	shared    *env
	sharedErr error
	once      sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		_ = shared.pg.Close()
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// setup starts the shared server on first use; without PostgreSQL the
// benchmark fails under CI=true and is skipped otherwise.
func setup(b *testing.B) *env {
	once.Do(func() { shared, sharedErr = start() })
	testutil.RequirePG(b, sharedErr)
	return shared
}

func start() (*env, error) {
	ca, err := certgen.NewCA("pgsecure bench CA", certgen.ECDSAP256)
	if err != nil {
		return nil, err
	}
	pair, err := ca.Issue(testutil.LocalServerOptions())
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgsecure-bench-")
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		return nil, err
	}
	pg, err := testutil.Start(testutil.PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: pair.KeyPEM})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pg.Admin(ctx)
	if err == nil {
		_, err = admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", user, password))
		admin.Close(ctx)
	}
	if err != nil {
		_ = pg.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pgsecure/bench: creating the role: %w", err)
	}
	return &env{pg: pg, dir: dir, caFile: caFile}, nil
}

func (e *env) dsn() string {
	return fmt.Sprintf("postgres://%s:%s@localhost:%d/postgres", user, password, e.pg.Port)
}

// rawDSN is the connection string raw pgx uses: verify-full with the same CA.
func (e *env) rawDSN(maxConns int) string {
	return fmt.Sprintf("%s?sslmode=verify-full&sslrootcert=%s&pool_max_conns=%d", e.dsn(), e.caFile, maxConns)
}

// rawPool is plain pgxpool with sslmode=verify-full and the same CA, with
// an optional AfterConnect hook.
func (e *env) rawPool(b *testing.B, maxConns int, after func(context.Context, *pgx.Conn) error) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(e.rawDSN(maxConns))
	if err != nil {
		b.Fatal(err)
	}
	cfg.AfterConnect = after
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return pool
}

var quiet = slog.New(slog.DiscardHandler)

func (e *env) builder() *pgsecure.Builder {
	return pgsecure.NewBuilder(e.dsn()).RootCAFile(e.caFile).Logger(quiet)
}

func (e *env) securePool(b *testing.B, maxConns int32, queryEvery bool) *pgxpool.Pool {
	builder := e.builder().MaxConns(maxConns)
	if queryEvery {
		builder = builder.QueryServerEveryConnection()
	}
	pool, err := builder.Build(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return pool
}

// serverQuery is the query pgsecure's server-side proof runs when the
// connection is not proven by channel binding (the same text as
// internal/connect's, in one round trip with the simple query protocol).
const serverQuery = `SELECT a.ssl, coalesce(a.sslversion, ''), coalesce(a.sslcipher, ''), coalesce(a.sslbits, 0),
 coalesce(a.ssl_client_dn, ''), coalesce(a.ssl_client_serial::text, ''), coalesce(a.ssl_issuer_dn, ''), a.pid
 FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a`

// BenchmarkConnect measures opening one new connection through a pool
// (TCP, TLS handshake, SCRAM, and for pgsecure its checks) and closing it,
// one row per proof: impl=pgsecure is proven by channel binding
// (SCRAM-SHA-256-PLUS, no query), impl=pgsecure_query queries the server
// on every connection (QueryServerEveryConnection). impl=raw_query is raw
// pgx plus that same query, to show what the query costs on its own.
func BenchmarkConnect(b *testing.B) {
	e := setup(b)
	run := func(b *testing.B, pool *pgxpool.Pool, proof verify.Proof) { connectLoop(b, pool, proof, false) }
	runImpls(b, []impl{
		{"raw", func(b *testing.B) { run(b, e.rawPool(b, 1, nil), "") }},
		{"raw_query", func(b *testing.B) {
			run(b, e.rawPool(b, 1, func(ctx context.Context, c *pgx.Conn) error {
				_, err := c.PgConn().Exec(ctx, serverQuery).ReadAll() // simple protocol: one round trip, as pgsecure
				return err
			}), "")
		}},
		{"pgsecure", func(b *testing.B) { run(b, e.securePool(b, 1, false), verify.ProofChannelBinding) }},
		{"pgsecure_query", func(b *testing.B) { run(b, e.securePool(b, 1, true), verify.ProofServerQuery) }},
	})
}

// BenchmarkConnectFirstQuery is BenchmarkConnect plus the application's
// first query (SELECT 1) on the new connection: what a service sees when the
// pool grows.
func BenchmarkConnectFirstQuery(b *testing.B) {
	e := setup(b)
	run := func(b *testing.B, pool *pgxpool.Pool, proof verify.Proof) { connectLoop(b, pool, proof, true) }
	runImpls(b, []impl{
		{"raw", func(b *testing.B) { run(b, e.rawPool(b, 1, nil), "") }},
		{"pgsecure", func(b *testing.B) { run(b, e.securePool(b, 1, false), verify.ProofChannelBinding) }},
	})
}

// connectLoop opens a new connection per iteration (taking it out of the
// pool, so the next Acquire dials), optionally runs the application's first
// query on it, and closes the pool at the end. The pool is emptied first:
// Build leaves its startup connection idle, which would make pgsecure's
// first iteration a pool hit where raw pgx's dials. proof, when not empty,
// is the proof every pgsecure connection must carry (a row measures the
// proof it names, or fails).
func connectLoop(b *testing.B, pool *pgxpool.Pool, proof verify.Proof, firstQuery bool) {
	defer pool.Close()
	ctx := context.Background()
	pool.Reset()
	for b.Loop() {
		c, err := pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if proof != "" {
			if r, err := pgsecure.ConnReport(c.Conn()); err != nil || r.Proof != proof {
				b.Fatalf("connection proven by %q, want %q", r.Proof, proof)
			}
		}
		if firstQuery {
			var one int
			if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				b.Fatal(err)
			}
		}
		if err := c.Hijack().Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if n := pool.Stat().NewConnsCount(); n < int64(b.N) {
		b.Fatalf("%d new connections for %d iterations: some iterations were pool hits", n, b.N)
	}
}

// impl is one side of a comparison.
type impl struct {
	name string
	run  func(*testing.B)
}

// runImpls runs each impl as sub-benchmark impl=NAME, in reverse order when
// BENCH_REVERSE is set (bench/run.sh alternates it between rounds, so neither
// side always runs first, on a warmer or colder process).
func runImpls(b *testing.B, impls []impl) {
	if os.Getenv("BENCH_REVERSE") != "" {
		impls = slices.Clone(impls)
		slices.Reverse(impls)
	}
	for _, i := range impls {
		b.Run("impl="+i.name, i.run)
	}
}

// BenchmarkQuery measures acquire + SELECT 1 + release on warm pools of 4
// connections from parallel goroutines.
func BenchmarkQuery(b *testing.B) {
	e := setup(b)
	run := func(b *testing.B, pool *pgxpool.Pool) {
		defer pool.Close()
		ctx := context.Background()
		if err := pool.Ping(ctx); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var n int
			for pb.Next() {
				if err := pool.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	runImpls(b, []impl{
		{"raw", func(b *testing.B) { run(b, e.rawPool(b, 4, nil)) }},
		{"pgsecure", func(b *testing.B) { run(b, e.securePool(b, 4, false)) }},
	})
}

// BenchmarkPoolStart measures creating a pool until it holds MinConns
// (16) established connections, then closing it: pgsecure's Build (which
// also verifies its startup connection with the server query) against raw
// pgxpool.NewWithConfig with the same MinConns.
func BenchmarkPoolStart(b *testing.B) {
	e := setup(b)
	const minConns = 16
	run := func(b *testing.B, open func(context.Context) (*pgxpool.Pool, error)) {
		ctx := context.Background()
		for b.Loop() {
			pool, err := open(ctx)
			if err != nil {
				b.Fatal(err)
			}
			waitConns(b, pool, minConns)
			pool.Close()
		}
	}
	runImpls(b, []impl{
		{"raw", func(b *testing.B) {
			cfg, err := pgxpool.ParseConfig(e.rawDSN(16))
			if err != nil {
				b.Fatal(err)
			}
			cfg.MinConns = minConns
			run(b, func(ctx context.Context) (*pgxpool.Pool, error) { return pgxpool.NewWithConfig(ctx, cfg) })
		}},
		{"pgsecure", func(b *testing.B) {
			run(b, e.builder().MinConns(minConns).MaxConns(16).Build)
		}},
	})
}

// waitConns waits until pool holds n established connections (idle or
// acquired; connections still being made do not count).
func waitConns(b *testing.B, pool *pgxpool.Pool, n int32) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := pool.Stat()
		if st.IdleConns()+st.AcquiredConns() >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("pool reached %d of %d connections", st.IdleConns()+st.AcquiredConns(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// counting counts calls to the source it wraps.
type counting struct {
	secrets.Source
	n atomic.Int64
}

func (c *counting) Credentials(ctx context.Context) (secrets.Credentials, error) {
	c.n.Add(1)
	return c.Source.Credentials(ctx)
}

// BenchmarkCredentials compares fetching credentials from a file source
// directly and through secrets.Cache; fetches/op counts calls reaching the
// source.
func BenchmarkCredentials(b *testing.B) {
	path := filepath.Join(b.TempDir(), "db.json")
	if err := os.WriteFile(path, []byte(`{"username":"`+user+`","password":"`+password+`"}`), 0o600); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, cached bool) {
		src := &counting{Source: secrets.File(path)}
		var s secrets.Source = src
		if cached {
			s = secrets.NewCache(src, secrets.CacheOptions{})
		}
		ctx := context.Background()
		for b.Loop() {
			if _, err := s.Credentials(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(src.n.Load())/float64(b.N), "fetches/op")
	}
	runImpls(b, []impl{
		{"uncached", func(b *testing.B) { run(b, false) }},
		{"cached", func(b *testing.B) { run(b, true) }},
	})
}
