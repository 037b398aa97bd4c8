package secrets

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgsecure/pgsecure/internal/refresh"
)

// CacheOptions tune a Cache. The zero value gives the defaults.
type CacheOptions struct {
	// TTL is how long credentials without Expires are served before one
	// background fetch checks for new ones (moved earlier by up to a tenth
	// of TTL). Default 5 min.
	TTL time.Duration
	// FetchTimeout bounds one fetch from the wrapped source. Default 10 s.
	FetchTimeout time.Duration
	// Logger receives "secret fetched"/"secret refreshed" at Debug, one
	// Warn when the source starts failing while cached credentials are
	// still served, and one Info when it recovers; records carry the
	// source name, version and lifetime, never a secret. Default: discard.
	Logger *slog.Logger

	now  func() time.Time // test hook (see refresh.SetCacheClock)
	rand func() float64   // test hook: jitter in [0, 1)
}

func init() {
	refresh.SetCacheClock = func(opts any, now func() time.Time) {
		o := opts.(*CacheOptions)
		o.now, o.rand = now, func() float64 { return 0 }
	}
}

// Cache shares credentials fetched from a Source between callers, following
// the timing model of the package documentation.
//
// What a caller may rely on:
//   - Credentials it returns are never within 4 s (refresh.MinMargin) of
//     their Expires, so a connection opened with them lives at least 2 s
//     before the pool retires it.
//   - A caller never waits for the source while the cached credentials are
//     outside their mandatory window: from the advisory point one
//     background fetch runs and callers are served the cached credentials
//     meanwhile. Callers wait only when nothing is cached, when the cached
//     credentials are in their mandatory window (and the source has not
//     already answered with the same ones there), or after Invalidate.
//   - Concurrent callers share ONE call to the source; no lock is held
//     while it runs. It runs detached from the caller that started it, with
//     FetchTimeout as its own deadline, so one caller's cancellation fails
//     nobody else; every caller still returns as soon as its own ctx is done.
//   - When the source fails while the cached credentials have not expired,
//     they are served (one Warn per outage, one Info on recovery; fetches
//     are retried in the background with jittered backoff from 1 s to 30 s).
//     Once they have expired, the error wraps ErrExpired and the source's
//     error and names the source. With nothing cached, the source's error
//     is returned.
//
// A Cache is safe for concurrent use and prints as its name only.
type Cache struct {
	named
	src   Source
	o     CacheOptions
	group refresh.Group[Credentials]

	cur     atomic.Pointer[cacheEntry]
	invGen  atomic.Uint64 // counts invalidations, so a fetch racing one is not trusted
	waiting atomic.Int64  // callers waiting on a fetch (observed by tests)

	mu          sync.Mutex // guards the fields below; never held across a fetch
	failures    int        // consecutive failed fetches
	unchanged   int        // consecutive fetches in the mandatory window that returned the cached credentials
	outageSince time.Time  // first failure of the current streak
	fetched     bool       // a fetch has succeeded before
}

type cacheEntry struct {
	creds     Credentials
	advisory  time.Time // from here one background fetch runs
	mandatory time.Time // from here callers wait for a fetch; zero: never
}

// LifetimeManager is implemented by sources that keep their credentials
// fresh themselves (a Vault dynamic-credentials source renews and replaces
// its lease) and return them without a backend call while they are valid.
// Cached does not wrap a source whose ManagesLifetime reports true.
type LifetimeManager interface {
	Source
	ManagesLifetime() bool
}

// Rotator is implemented by sources whose credentials rotate while the
// program runs (AWS Secrets Manager, Vault static and dynamic roles, files).
// pgsecure treats a server's SQLSTATE 28000 (RDS Proxy's answer to rotated
// credentials) as a credential rejection only for sources whose Rotates
// reports true. *Cache forwards the question to its source.
type Rotator interface {
	Rotates() bool
}

// Cached returns a Source that shares fetches from src between callers:
// src itself when it is already a *Cache or manages its own lifetime (see
// LifetimeManager), else NewCache(src, o). It panics on a nil src.
func Cached(src Source, o CacheOptions) Source {
	if lm, ok := src.(LifetimeManager); ok && lm.ManagesLifetime() {
		return src
	}
	return NewCache(src, o)
}

// NewCache wraps src in a Cache. If src already is a *Cache it is returned
// unchanged (and o is ignored): a cache never wraps a cache. It panics on a
// nil src. Prefer Cached, which also leaves alone sources that manage their
// own lifetime.
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
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 10 * time.Second
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.rand == nil {
		o.rand = refresh.Rand
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{named: named{NameOf(src)}, src: src, o: o}
}

// Credentials implements Source.
func (c *Cache) Credentials(ctx context.Context) (Credentials, error) {
	now := c.o.now()
	e := c.cur.Load()
	if e != nil && now.Before(e.advisory) {
		return e.creds, nil
	}
	if e != nil && (e.mandatory.IsZero() || now.Before(e.mandatory)) {
		c.group.Go(ctx, c.fresh(false), c.o.FetchTimeout, c.fetch)
		return e.creds, nil
	}
	if ctx.Err() != nil {
		return Credentials{}, ctxError(c.name, ctx)
	}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	creds, err := c.group.Do(ctx, c.fresh(true), c.o.FetchTimeout, c.fetch)
	if err != nil && ctx.Err() != nil {
		return Credentials{}, ctxError(c.name, ctx)
	}
	return creds, err
}

// fresh reports cached credentials that need no fetch: before the advisory
// point, or (when the caller would wait) before the mandatory point. It runs
// under the Group's lock, so a fetch that just finished is not repeated.
func (c *Cache) fresh(wait bool) refresh.Ready[Credentials] {
	return func() (Credentials, bool, error) {
		e := c.cur.Load()
		if e == nil {
			return Credentials{}, false, nil
		}
		now := c.o.now()
		limit := e.advisory
		if wait {
			limit = e.mandatory
		}
		return e.creds, now.Before(limit) || (wait && limit.IsZero()), nil
	}
}

// fetch asks the source once (again, if an Invalidate arrived meanwhile:
// the answer may be the rejected credentials) and records the outcome.
func (c *Cache) fetch(ctx context.Context) (Credentials, error) {
	var creds Credentials
	var err error
	for try := 0; try < 3; try++ {
		gen := c.invGen.Load()
		creds, err = c.src.Credentials(ctx)
		if c.invGen.Load() == gen || ctx.Err() != nil {
			break
		}
	}
	now := c.o.now()
	if err == nil && !refresh.Usable(creds.Expires, now) {
		err = &Error{Kind: ErrExpired, Source: c.name, Op: "refresh", Hint: "the source returned credentials that " +
			"expire at " + fmtTime(creds.Expires) + ", too soon to open a connection with; check the backend's " +
			"lease settings (a TTL of a few seconds at least) and this machine's clock"}
	}
	c.mu.Lock()
	var log func()
	if err == nil {
		creds, log = c.stored(creds, now)
	} else {
		creds, err, log = c.failed(err, now)
	}
	c.mu.Unlock()
	log() // before waking the callers, so a log line never trails their result
	return creds, err
}

// stored caches fresh credentials; c.mu is held. It returns them and the
// log call.
func (c *Cache) stored(creds Credentials, now time.Time) (Credentials, func()) {
	if creds.Source == "" {
		creds.Source = c.name
	}
	prev := c.cur.Load()
	e := &cacheEntry{creds: creds}
	switch {
	case creds.Expires.IsZero():
		e.advisory = now.Add(c.o.TTL - time.Duration(c.o.rand()*float64(c.o.TTL/10)))
	case prev != nil && !prev.mandatory.IsZero() && !now.Before(prev.mandatory) && sameGeneration(prev.creds, creds):
		// Asked in the mandatory window, the source has nothing newer (a
		// rotation not done yet): serve these while they are usable
		// without making callers wait again, and ask again with backoff.
		c.unchanged++
		e.mandatory = creds.Expires.Add(-refresh.MinMargin)
		e.advisory = minTime(now.Add(refresh.Backoff(c.unchanged, c.o.rand())), e.mandatory)
	default:
		c.unchanged = 0
		s := refresh.For(now, creds.Expires, c.o.rand())
		e.advisory, e.mandatory = s.Advisory, s.Mandatory
	}
	c.cur.Store(e)
	msg := "secret refreshed"
	if !c.fetched {
		msg = "secret fetched"
	}
	recovered, failures := !c.outageSince.IsZero(), c.failures
	since := c.outageSince
	c.fetched, c.failures, c.outageSince = true, 0, time.Time{}
	ttl := c.o.TTL
	if !creds.Expires.IsZero() {
		ttl = creds.Expires.Sub(now)
	}
	return creds, func() {
		if recovered {
			c.o.Logger.Info("secret source recovered", "source", c.name, "failed_fetches", failures,
				"outage", now.Sub(since), "version", creds.Version)
		}
		c.o.Logger.Debug(msg, "source", c.name, "version", creds.Version, "ttl", ttl, "refresh_in", e.advisory.Sub(now))
	}
}

// failed serves the cached credentials while they are valid, else reports
// the error; c.mu is held. It returns the outcome and the log call.
func (c *Cache) failed(err error, now time.Time) (Credentials, error, func()) {
	c.failures++
	first := c.outageSince.IsZero()
	if first {
		c.outageSince = now
	}
	e := c.cur.Load()
	if e == nil {
		return Credentials{}, Named(err, c.name), func() {}
	}
	exp := e.creds.Expires
	if !refresh.Usable(exp, now) {
		return Credentials{}, &Error{Kind: ErrExpired, Source: c.name, Op: "refresh", Hint: "cached credentials " +
			"expire at " + fmtTime(exp) + " (too soon to open a connection with) and the source has been failing since " +
			fmtTime(c.outageSince) + "; restore the backend or fix the error below", Err: err}, func() {}
	}
	next := now.Add(refresh.Backoff(c.failures, c.o.rand()))
	var mandatory time.Time // during an outage callers wait only when nothing usable is left
	if !exp.IsZero() {
		mandatory = exp.Add(-refresh.MinMargin)
		next = minTime(next, mandatory)
	}
	c.cur.Store(&cacheEntry{creds: e.creds, advisory: next, mandatory: mandatory})
	if !first {
		return e.creds, nil, func() {}
	}
	return e.creds, nil, func() {
		c.o.Logger.Warn("secret source failed; serving cached credentials while they are usable",
			"source", c.name, "version", e.creds.Version, "expires", fmtTime(exp), "error", err.Error())
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Invalidate implements Invalidator. If the cache holds the rejected
// credentials (same Version and Password) or holds nothing, it drops them so
// the next call waits for a fetch, and forwards rejected to the source if
// that is an Invalidator. A report about credentials the cache has already
// replaced is ignored (neither dropped nor forwarded), so a late rejection
// does not throw away fresh credentials. A fetch under way during an
// Invalidate asks the source again before it answers.
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

// Rotates implements Rotator by asking the source.
func (c *Cache) Rotates() bool {
	r, ok := c.src.(Rotator)
	return ok && r.Rotates()
}

// Close implements Closer by closing the source if it is a Closer.
func (c *Cache) Close(ctx context.Context) error {
	if cl, ok := c.src.(Closer); ok {
		return cl.Close(ctx)
	}
	return nil
}
