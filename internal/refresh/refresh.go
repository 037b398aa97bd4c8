// Package refresh holds the mechanics every secret source in pgsecure shares:
// one call in flight per refresh (Group), one timing model for credentials
// that expire (Schedule), and one backoff after failures (Backoff).
//
// The timing model, documented for users in package secrets:
//
//   - Credentials issued at t0 that expire at t0+L are refreshed in the
//     background from t0 + 2L/3, moved earlier by up to L/10 of jitter.
//   - Callers wait for fresh credentials only from Expires − Margin(L)
//     (L/10, at least MinMargin), the mandatory window.
//   - Credentials are never handed out within MinMargin of Expires, even
//     while the backend is down: the pool retires each connection at least
//     MinMargin before the credentials it was opened with expire, so such
//     credentials could not carry a query.
//   - After a failure, attempt n+1 waits Backoff(n): doubling from 1 s up to
//     30 s, scaled by a random factor in [0.5, 1).
package refresh

import (
	"context"
	"math/rand/v2"
	"time"
)

// Schedule says when credentials issued at issued and expiring at expires
// should be refreshed. r in [0, 1) spreads refreshes of many processes.
type Schedule struct {
	Advisory  time.Time // from here one background refresh runs; callers are served
	Mandatory time.Time // from here callers wait for a refresh
}

// For returns the schedule of credentials issued at issued that expire at
// expires (which must not be zero).
func For(issued, expires time.Time, r float64) Schedule {
	life := max(expires.Sub(issued), 0)
	advisory := issued.Add(life*2/3 - time.Duration(r*float64(life/10)))
	mandatory := expires.Add(-Margin(life))
	if advisory.After(mandatory) {
		advisory = mandatory
	}
	return Schedule{Advisory: advisory, Mandatory: mandatory}
}

// RenewDelay is how long after issue a lease of duration ttl is renewed: the
// advisory point of For.
func RenewDelay(ttl time.Duration, r float64) time.Duration {
	now := time.Unix(0, 0)
	return For(now, now.Add(ttl), r).Advisory.Sub(now)
}

// RetireMargin is the least margin by which the pool retires a connection
// before the credentials it was opened with expire (so that no query runs
// on a session whose role is about to be dropped).
const RetireMargin = 2 * time.Second

// MinMargin is the least time before Expires at which credentials are
// still handed out: twice RetireMargin, so that a connection opened with
// them serves queries for at least RetireMargin before it is retired.
const MinMargin = 2 * RetireMargin

// Margin is how long before its end a credential of lifetime life stops
// being handed out without a refresh: a tenth of life, at least MinMargin
// (at most life).
func Margin(life time.Duration) time.Duration {
	return min(max(life/10, MinMargin), life)
}

// Usable reports whether credentials expiring at expires may still be
// handed out at now: expires is zero (no expiry) or more than MinMargin
// away.
func Usable(expires, now time.Time) bool {
	return expires.IsZero() || now.Before(expires.Add(-MinMargin))
}

// MaxBackoff bounds Backoff.
const MaxBackoff = 30 * time.Second

// Backoff is the wait before attempt n+1 after n consecutive failures (n ≥ 1):
// 1 s doubling up to MaxBackoff, scaled by a factor in [0.5, 1) drawn from r.
func Backoff(n int, r float64) time.Duration {
	d := MaxBackoff
	if n >= 1 && n < 6 {
		d = min(time.Second<<(n-1), MaxBackoff)
	}
	return time.Duration(float64(d) * (0.5 + r/2))
}

// Rand returns a uniform float in [0, 1) for jitter.
func Rand() float64 { return rand.Float64() }

// SetCacheClock gives a *secrets.CacheOptions a fake clock. Package secrets
// installs it; it exists for tests in this module only, so that the clock
// stays out of the public API.
var SetCacheClock func(opts any, now func() time.Time)

// RotationTries bounds how often a rotating source reads again after the
// database rejected its credentials while nothing newer is published. The
// waits between reads start at 100 ms and double (each scaled by a random
// factor in [0.5, 1)), so a rotation window of up to about 6 s is bridged
// while a short one costs little more than itself.
const RotationTries = 7

// AwaitNewer calls read until stale reports false for its result, at most
// RotationTries times, waiting as RotationTries describes between reads; it
// stops early on an error or when ctx ends, and then returns the last
// result: the database decides about it. r draws the jitter.
func AwaitNewer[T any](ctx context.Context, r func() float64, read func(context.Context) (T, error), stale func(T) bool) (T, error) {
	for try := 1; ; try++ {
		v, err := read(ctx)
		if err != nil || !stale(v) || try == RotationTries {
			return v, err
		}
		t := time.NewTimer(time.Duration(float64(100*time.Millisecond<<(try-1)) * (0.5 + r()/2)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return v, nil
		}
	}
}

// MaxLoginBackoff bounds LoginBackoff.
const MaxLoginBackoff = 1600 * time.Millisecond

// LoginBackoff is the wait before login round n+1 (n ≥ 1) while the
// database rejects what the credential source holds and the source has
// nothing newer (a rotation half done): 100 ms doubling up to
// MaxLoginBackoff, scaled by a factor in [0.5, 1) drawn from r. Short,
// because the other side of a rotation usually follows within seconds and
// each round costs one login; bounded by the connect's own deadline.
func LoginBackoff(n int, r float64) time.Duration {
	d := MaxLoginBackoff
	if n >= 1 && n <= 5 {
		d = min(100*time.Millisecond<<(n-1), MaxLoginBackoff)
	}
	return time.Duration(float64(d) * (0.5 + r/2))
}
