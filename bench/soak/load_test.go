package soak

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// opTimeout bounds every operation, so that a hang shows as a failure.
const opTimeout = 5 * time.Second

// key names one INSERT of the ledger: pool, worker, sequence number.
type key struct {
	pool   string
	worker int
	seq    int
}

// op is one finished operation.
type op struct {
	start, end time.Time
	ok         bool
}

// load is what one pool's workers saw during one scenario.
type load struct {
	mu        sync.Mutex
	ops       []op
	acked     map[key]bool  // COMMIT acknowledged
	uncertain map[key]error // COMMIT sent and failed
	errs      map[string]int
}

func newLoad() *load {
	return &load{acked: map[key]bool{}, uncertain: map[key]error{}, errs: map[string]int{}}
}

func (l *load) record(start time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, op{start: start, end: time.Now(), ok: err == nil})
	if err != nil {
		msg := err.Error()
		if len(msg) > 160 {
			msg = msg[:160]
		}
		l.errs[msg]++
	}
}

// run starts workers on pool until stop is closed; seq hands out ledger
// sequence numbers per worker (kept across scenarios).
func (l *load) run(pool *pgxpool.Pool, name string, workers int, seq []int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					seq[w]++
					l.commit(pool, key{name, w, seq[w]})
				} else {
					l.query(pool)
				}
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		})
	}
	return &wg
}

// commit inserts k in a transaction; only an acknowledged COMMIT goes into
// the client ledger. A COMMIT that failed after it was sent may have
// committed: it is remembered with its error (and whether the connection
// was already closed before it, when nothing can have been sent).
func (l *load) commit(pool *pgxpool.Pool, k key) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	start := time.Now()
	tx, err := pool.Begin(ctx)
	if err == nil {
		if _, err = tx.Exec(ctx, "INSERT INTO ledger (pool, worker, seq) VALUES ($1, $2, $3)", k.pool, k.worker, k.seq); err != nil {
			_ = tx.Rollback(ctx)
		} else {
			closedBefore := tx.Conn().PgConn().IsClosed()
			err = tx.Commit(ctx)
			l.mu.Lock()
			switch {
			case err == nil:
				l.acked[k] = true
			case closedBefore:
				l.uncertain[k] = fmt.Errorf("connection closed before COMMIT: %w", err)
			default:
				l.uncertain[k] = err
			}
			l.mu.Unlock()
		}
	}
	l.record(start, err)
}

func (l *load) query(pool *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	start := time.Now()
	var one int
	err := pool.QueryRow(ctx, "SELECT 1").Scan(&one)
	if err == nil && one != 1 {
		err = errors.New("SELECT 1 returned something else")
	}
	l.record(start, err)
}

// summary is one row of the table.
type summary struct {
	attempted, failed       int
	lost                    int // acknowledged commits missing from the table
	committedUnacked        int // failed COMMITs that did commit
	safeToRetryButCommitted int // ... whose error said SafeToRetry
	recovery                time.Duration
	p50Steady, p99Steady    time.Duration
	p50Fault, p99Fault      time.Duration
	topErr                  string
	retryLies               []string // errors of committed COMMITs that said SafeToRetry
}

// summarize compares the ledger with the rows the server has (present) and
// measures latencies: steady is before faultStart, during is from
// faultStart to faultEnd.
func (l *load) summarize(present map[key]bool, faultStart, faultEnd time.Time) summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s summary
	var steady, during []time.Duration
	var lastFail time.Time
	for _, o := range l.ops {
		s.attempted++
		if !o.ok {
			s.failed++
			if o.end.After(lastFail) {
				lastFail = o.end
			}
			continue
		}
		switch {
		case o.start.Before(faultStart):
			steady = append(steady, o.end.Sub(o.start))
		case o.start.Before(faultEnd):
			during = append(during, o.end.Sub(o.start))
		}
	}
	if lastFail.After(faultStart) {
		s.recovery = lastFail.Sub(faultStart)
	}
	for k := range l.acked {
		if !present[k] {
			s.lost++
		}
	}
	for k, err := range l.uncertain {
		if present[k] {
			s.committedUnacked++
			if pgconn.SafeToRetry(err) {
				s.safeToRetryButCommitted++
				s.retryLies = append(s.retryLies, fmt.Sprintf("%T: %v", err, err))
			}
		}
	}
	s.p50Steady, s.p99Steady = percentile(steady, 50), percentile(steady, 99)
	s.p50Fault, s.p99Fault = percentile(during, 50), percentile(during, 99)
	n := 0
	for msg, c := range l.errs {
		if c > n || (c == n && msg < s.topErr) {
			s.topErr, n = msg, c
		}
	}
	return s
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, (len(d)*p)/100)]
}
