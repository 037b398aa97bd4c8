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

// rawPool is plain pgxpool with sslmode=verify-full and the same CA, with
// an optional AfterConnect hook.
func (e *env) rawPool(b *testing.B, maxConns int, after func(context.Context, *pgx.Conn) error) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("%s?sslmode=verify-full&sslrootcert=%s&pool_max_conns=%d", e.dsn(), e.caFile, maxConns))
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

func (e *env) securePool(b *testing.B, maxConns int32) *pgxpool.Pool {
	pool, err := e.builder().MaxConns(maxConns).Build(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return pool
}

// statSSL is the kind of query pgsecure's server-side check runs on every
// new connection (in one round trip, with the simple query protocol).
const statSSL = "SELECT ssl, version FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()"

// BenchmarkConnect measures opening one new connection through a pool
// (TCP, TLS handshake, SCRAM, and for pgsecure its checks including the
// pg_stat_ssl query) and closing it. impl=raw_statssl is raw pgx plus that
// one query, to show what the server-side check costs on its own.
func BenchmarkConnect(b *testing.B) {
	e := setup(b)
	run := func(b *testing.B, pool *pgxpool.Pool) { connectLoop(b, pool, false) }
	runImpls(b, []impl{
		{"raw", func(b *testing.B) { run(b, e.rawPool(b, 1, nil)) }},
		{"raw_statssl", func(b *testing.B) {
			run(b, e.rawPool(b, 1, func(ctx context.Context, c *pgx.Conn) error {
				_, err := c.PgConn().Exec(ctx, statSSL).ReadAll() // simple protocol: one round trip, as pgsecure
				return err
			}))
		}},
		{"pgsecure", func(b *testing.B) { run(b, e.securePool(b, 1)) }},
	})
}

// BenchmarkConnectFirstQuery is BenchmarkConnect plus the application's
// first query (SELECT 1) on the new connection: what a service sees when the
// pool grows. A new backend's first query pays catalog warm-up either way;
// pgsecure's check has paid part of it already.
func BenchmarkConnectFirstQuery(b *testing.B) {
	e := setup(b)
	run := func(b *testing.B, pool *pgxpool.Pool) { connectLoop(b, pool, true) }
	runImpls(b, []impl{
		{"raw", func(b *testing.B) { run(b, e.rawPool(b, 1, nil)) }},
		{"pgsecure", func(b *testing.B) { run(b, e.securePool(b, 1)) }},
	})
}

// connectLoop opens a new connection per iteration (taking it out of the
// pool, so the next Acquire dials), optionally runs the application's first
// query on it, and closes the pool at the end.
func connectLoop(b *testing.B, pool *pgxpool.Pool, firstQuery bool) {
	defer pool.Close()
	ctx := context.Background()
	for b.Loop() {
		c, err := pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
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
		{"pgsecure", func(b *testing.B) { run(b, e.securePool(b, 4)) }},
	})
}

// BenchmarkPoolStart measures Build until the pool holds MinConns verified
// connections, then Close.
func BenchmarkPoolStart(b *testing.B) {
	e := setup(b)
	for _, min := range []int32{1, 16} {
		b.Run(fmt.Sprintf("min=%d", min), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				pool, err := e.builder().MinConns(min).MaxConns(16).Build(ctx)
				if err != nil {
					b.Fatal(err)
				}
				deadline := time.Now().Add(30 * time.Second)
				for pool.Stat().TotalConns() < min {
					if time.Now().After(deadline) {
						b.Fatalf("pool reached %d of %d connections", pool.Stat().TotalConns(), min)
					}
					time.Sleep(time.Millisecond)
				}
				pool.Close()
			}
		})
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
