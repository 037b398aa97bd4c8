package secrets

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// CacheOptions tune a Cache. The zero value gives the defaults.
type CacheOptions struct {
	// RefreshBefore is how long before Credentials.Expires a fetch is
	// started. Default: a third of the remaining lifetime, at most 5 min.
	// It is capped at half the remaining lifetime so short-lived credentials
	// are not fetched again on every call.
	RefreshBefore time.Duration
	// TTL is how long credentials without Expires are reused before the next
	// call fetches again (nothing runs in the background). Default 5 min.
	TTL time.Duration
	// Jitter is the fraction by which refreshes are randomly moved earlier
	// (up to Jitter×RefreshBefore before it, or Jitter×TTL), so that many
	// processes do not refresh at the same instant. 0 means 0.1; a negative
	// value disables jitter; values above 1 count as 1.
	Jitter float64
	// FetchTimeout bounds one fetch from the wrapped source. Default 10 s.
	FetchTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives "secret fetched"/"secret refreshed" at Debug and a
	// warning when the source fails while cached credentials are still used;
	// records carry the source name, version and lifetime, never a secret.
	// Default: discard.
	Logger *slog.Logger
	// Name names the cache in logs and errors; default the source's name.
	Name string
}

// Cache shares credentials fetched from a Source between callers.
//
// What a caller may rely on:
//   - Credentials it returns are never past their Expires.
//   - Concurrent calls that find nothing usable share ONE call to the source;
//     no lock is held while the source runs. That call runs detached from
//     the caller that started it (with FetchTimeout as its own deadline), so
//     one caller's cancellation does not fail the others; every caller still
//     returns as soon as its own ctx is done.
//   - Credentials are fetched again RefreshBefore (jittered) before they
//     expire, or after TTL when they have no Expires. The caller that finds
//     them due waits for the fetch.
//   - When the source fails while the cached credentials have not expired,
//     they are returned (one Warn log per failure streak; later attempts back
//     off from 1 s to 30 s). Once they have expired, the error wraps ErrExpired
//     and the source's error and names the source. With nothing cached, the
//     source's error is returned as it is.
//
// A Cache is safe for concurrent use and prints as its name only.
type Cache struct {
	named
	src  Source
	o    CacheOptions
	rand func() float64 // in [0, 1); replaced by tests

	cur     atomic.Pointer[cacheEntry]
	invGen  atomic.Uint64 // counts invalidations, so a fetch racing one is not trusted
	waiting atomic.Int64  // callers waiting on a fetch (observed by tests)

	mu       sync.Mutex // guards the fields below; never held across a fetch
	flight   *fetchCall
	failures int  // consecutive failed fetches
	fetched  bool // a fetch has succeeded before
}

type cacheEntry struct {
	creds     Credentials
	refreshAt time.Time // served without fetching before this instant
}

type fetchCall struct {
	done  chan struct{}
	creds Credentials
	err   error
}

// NewCache wraps src in a Cache. If src already is a *Cache it is returned
// unchanged (and o is ignored): a cache never wraps a cache. It panics on a
// nil src.
func NewCache(src Source, o CacheOptions) *Cache {
	if c, ok := src.(*Cache); ok {
		return c
	}
	if src == nil {
		panic("pgsecure/secrets: NewCache: nil source")
	}
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	switch {
	case o.Jitter == 0:
		o.Jitter = 0.1
	case o.Jitter < 0:
		o.Jitter = 0
	case o.Jitter > 1:
		o.Jitter = 1
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		o.Name = NameOf(src)
	}
	return &Cache{named: named{o.Name}, src: src, o: o, rand: rand.Float64}
}

// Credentials implements Source.
func (c *Cache) Credentials(ctx context.Context) (Credentials, error) {
	if e := c.cur.Load(); e != nil && c.o.Now().Before(e.refreshAt) {
		return e.creds, nil
	}
	if ctx.Err() != nil {
		return Credentials{}, ctxError(c.name, ctx)
	}
	call := c.join(ctx)
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case <-call.done:
		return call.creds, call.err
	case <-ctx.Done():
		return Credentials{}, ctxError(c.name, ctx)
	}
}

// join returns the fetch in flight, starting one if there is none.
func (c *Cache) join(ctx context.Context) *fetchCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flight != nil {
		return c.flight
	}
	if e := c.cur.Load(); e != nil && c.o.Now().Before(e.refreshAt) {
		// A fetch finished between the fast path and the lock.
		call := &fetchCall{done: make(chan struct{}), creds: e.creds}
		close(call.done)
		return call
	}
	c.flight = &fetchCall{done: make(chan struct{})}
	go c.fetch(context.WithoutCancel(ctx), c.flight, c.invGen.Load())
	return c.flight
}

func (c *Cache) fetch(ctx context.Context, call *fetchCall, gen uint64) {
	ctx, cancel := context.WithTimeout(ctx, c.o.FetchTimeout)
	defer cancel()
	creds, err := c.src.Credentials(ctx)
	now := c.o.Now()
	if err == nil && !creds.Expires.IsZero() && !now.Before(creds.Expires) {
		err = newError(ErrExpired, c.name, "the source returned credentials that had already expired at "+
			fmtTime(creds.Expires)+"; check the backend's lease settings and this machine's clock", nil)
	}
	c.mu.Lock()
	var log func()
	if err == nil {
		log = c.stored(call, creds, now, gen)
	} else {
		log = c.failed(call, err, now)
	}
	c.flight = nil
	c.mu.Unlock()
	log() // before waking the callers, so a log line never trails their result
	close(call.done)
}

// stored caches fresh credentials; c.mu is held. It returns the log call.
func (c *Cache) stored(call *fetchCall, creds Credentials, now time.Time, gen uint64) func() {
	if creds.Source == "" {
		creds.Source = c.name
	}
	refreshAt := c.refreshAt(creds, now)
	if c.invGen.Load() != gen {
		refreshAt = now // invalidated while fetching: hand these out once, fetch again next call
	}
	c.cur.Store(&cacheEntry{creds: creds, refreshAt: refreshAt})
	call.creds = creds
	msg := "secret refreshed"
	if !c.fetched {
		msg = "secret fetched"
	}
	c.fetched, c.failures = true, 0
	ttl := c.o.TTL
	if !creds.Expires.IsZero() {
		ttl = creds.Expires.Sub(now)
	}
	return func() {
		c.o.Logger.Debug(msg, "source", c.name, "version", creds.Version, "ttl", ttl, "refresh_in", refreshAt.Sub(now))
	}
}

// failed serves the cached credentials while they are valid, else reports
// the error; c.mu is held. It returns the log call.
func (c *Cache) failed(call *fetchCall, err error, now time.Time) func() {
	c.failures++
	e := c.cur.Load()
	if e == nil {
		call.err = err
		return func() {}
	}
	exp := e.creds.Expires
	if !exp.IsZero() && !now.Before(exp) {
		call.err = newError(ErrExpired, c.name, "cached credentials expired at "+fmtTime(exp)+
			" and fetching new ones failed", err)
		return func() {}
	}
	next := now.Add(min(time.Second<<min(c.failures-1, 5), 30*time.Second))
	if !exp.IsZero() && next.After(exp) {
		next = exp
	}
	c.cur.Store(&cacheEntry{creds: e.creds, refreshAt: next})
	call.creds = e.creds
	if c.failures > 1 {
		return func() {}
	}
	return func() {
		c.o.Logger.Warn("secret source failed; using cached credentials until they expire",
			"source", c.name, "version", e.creds.Version, "expires", fmtTime(exp), "error", err.Error())
	}
}

// refreshAt is when creds fetched at now should be fetched again.
func (c *Cache) refreshAt(creds Credentials, now time.Time) time.Time {
	j := c.o.Jitter * c.rand()
	if creds.Expires.IsZero() {
		return now.Add(c.o.TTL - time.Duration(j*float64(c.o.TTL)))
	}
	life := creds.Expires.Sub(now)
	before := c.o.RefreshBefore
	if before <= 0 {
		before = min(life/3, 5*time.Minute)
	}
	before = min(before, life/2)
	return creds.Expires.Add(-before - time.Duration(j*float64(before)))
}

// Invalidate implements Invalidator. If the cache holds the rejected
// credentials (same Version and Password) or holds nothing, it drops them so
// the next call fetches, and forwards rejected to the source if that is an
// Invalidator. A report about credentials the cache has already replaced is
// ignored (neither dropped nor forwarded), so a late rejection does not throw
// away fresh credentials. Credentials whose fetch was under way during an
// Invalidate are handed to the callers waiting for them but not reused.
func (c *Cache) Invalidate(rejected Credentials) {
	e := c.cur.Load()
	if e != nil {
		if !sameGeneration(e.creds, rejected) {
			return
		}
		c.cur.CompareAndSwap(e, nil)
	}
	c.invGen.Add(1)
	if inv, ok := c.src.(Invalidator); ok {
		inv.Invalidate(rejected)
	}
}

func sameGeneration(a, b Credentials) bool {
	return a.Version == b.Version && a.Password.Equal(b.Password)
}

// Close implements Closer by closing the source if it is a Closer.
func (c *Cache) Close(ctx context.Context) error {
	if cl, ok := c.src.(Closer); ok {
		return cl.Close(ctx)
	}
	return nil
}
