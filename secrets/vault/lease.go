package vault

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/pgsecure/pgsecure/secrets"
)

// lease is the credentials a Database source currently hands out. Fields
// other than id and ttl are guarded by Source.mu.
type lease struct {
	id      string
	ttl     time.Duration // duration as first issued
	creds   secrets.Credentials
	retired bool               // must be re-read
	stop    context.CancelFunc // stops the watcher; nil when none runs
}

// leased returns the current lease's credentials, reading new ones when
// there are none or they are retired or near their end. Concurrent callers
// share one read.
func (s *Source) leased(ctx context.Context) (secrets.Credentials, error) {
	return s.fetch.do(ctx, func() (secrets.Credentials, bool, error) {
		if s.closed {
			return secrets.Credentials{}, false, ErrClosed
		}
		l := s.cur
		if l == nil || l.retired || !s.beforeMargin(l.creds.Expires, l.ttl) {
			return secrets.Credentials{}, false, nil
		}
		return l.creds, true, nil
	}, s.newLease)
}

// newLease reads new credentials and makes them current.
func (s *Source) newLease(ctx context.Context) (secrets.Credentials, error) {
	creds, sec, err := s.readDynamic(ctx)
	if err != nil {
		return secrets.Credentials{}, err
	}
	l := &lease{id: sec.LeaseID, ttl: time.Duration(sec.LeaseDuration) * time.Second, creds: creds}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if s.cfg.revokeOnClose && l.id != "" {
			_ = s.revoke(ctx, l.id)
		}
		return secrets.Credentials{}, ErrClosed
	}
	if old := s.cur; old != nil {
		s.retireLocked(old)
	}
	s.cur = l
	if sec.Renewable && l.id != "" && l.ttl > 0 {
		wctx, cancel := context.WithCancel(context.Background())
		l.stop = cancel
		s.wg.Add(1)
		go s.watch(wctx, l)
	}
	s.mu.Unlock()
	s.cfg.logger.Info("pgsecure/vault: new database credentials",
		"path", s.path, "user", creds.User, "lease_id", l.id, "ttl", l.ttl, "renewable", sec.Renewable)
	return creds, nil
}

// retireLocked marks l to be re-read and stops its watcher.
func (s *Source) retireLocked(l *lease) {
	l.retired = true
	if l.stop != nil {
		l.stop()
		l.stop = nil
	}
}

// beforeMargin reports whether now is earlier than expires minus a safety
// margin of a tenth of ttl (between 1 s and half of ttl). A zero expires
// never expires.
func (s *Source) beforeMargin(expires time.Time, ttl time.Duration) bool {
	if expires.IsZero() {
		return true
	}
	return s.now().Before(expires.Add(-margin(ttl)))
}

// margin is how long before its end a lease or token is replaced: a tenth
// of ttl, at least 1 s, at most half of ttl.
func margin(ttl time.Duration) time.Duration {
	return min(max(ttl/10, time.Second), ttl/2)
}

// watch renews l until it is retired, cannot be renewed, or reaches its
// max TTL; then it retires l so the next Credentials call reads new ones.
func (s *Source) watch(ctx context.Context, l *lease) {
	defer s.wg.Done()
	ttl := l.ttl       // duration granted by the last issue or renewal
	granted := s.now() // when it was granted
	wait := renewDelay(ttl, s.jitter())
	capped := false // the last renewal did not give a full ttl: max TTL is near
	for failures := 0; ; {
		if !sleep(ctx, wait) {
			return
		}
		if capped {
			s.retire(l, "max TTL reached", nil)
			return
		}
		sec, err := s.renewLease(ctx, l.id)
		if ctx.Err() != nil {
			return
		}
		now := s.now()
		if err != nil {
			remaining := granted.Add(ttl).Sub(now) - margin(l.ttl)
			if permanent(err) || remaining <= 0 {
				s.retire(l, "renewal failed", err)
				return
			}
			failures++
			wait = min(retryDelay(failures, s.jitter()), remaining)
			s.cfg.logger.Warn("pgsecure/vault: lease renewal failed; will retry",
				"path", s.path, "lease_id", l.id, "retry_in", wait, "error", err)
			continue
		}
		failures = 0
		ttl, granted = time.Duration(sec.LeaseDuration)*time.Second, now
		capped = ttl < l.ttl*9/10
		s.mu.Lock()
		l.creds.Expires = now.Add(ttl)
		s.mu.Unlock()
		s.cfg.logger.Debug("pgsecure/vault: lease renewed", "path", s.path, "lease_id", l.id, "ttl", ttl)
		wait = renewDelay(ttl, s.jitter())
	}
}

// retire marks l to be re-read, if it is still current.
func (s *Source) retire(l *lease, why string, err error) {
	s.mu.Lock()
	if s.cur == l {
		l.retired = true
	}
	s.mu.Unlock()
	attrs := []any{"path", s.path, "lease_id", l.id, "reason", why}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	s.cfg.logger.Info("pgsecure/vault: database credentials will be re-read", attrs...)
}

func (s *Source) renewLease(ctx context.Context, id string) (*api.Secret, error) {
	var sec *api.Secret
	err := s.client.do(ctx, func(c *api.Client) (err error) {
		sec, err = c.Sys().RenewWithContext(ctx, id, 0)
		return err
	})
	if err == nil && sec == nil {
		err = errors.New("empty renewal response")
	}
	if err != nil {
		return nil, classify("renew", "sys/leases/renew", err)
	}
	return sec, nil
}

func (s *Source) revoke(ctx context.Context, id string) error {
	err := s.client.do(ctx, func(c *api.Client) error { return c.Sys().RevokeWithContext(ctx, id) })
	if err != nil {
		return classify("revoke", "sys/leases/revoke", err)
	}
	s.cfg.logger.Info("pgsecure/vault: lease revoked", "path", s.path, "lease_id", id)
	return nil
}

// permanent reports a renewal failure that retrying cannot fix (the lease
// is gone or not renewable).
func permanent(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 &&
		re.StatusCode != http.StatusTooManyRequests
}

// renewDelay is how long to wait before renewing a lease of duration ttl:
// between 17/30 and 2/3 of ttl, spread by r in [0, 1) so that many clients
// do not renew together.
func renewDelay(ttl time.Duration, r float64) time.Duration {
	return ttl*2/3 - time.Duration(float64(ttl)*r/10)
}

// retryDelay is the backoff before renewal attempt n+1 after n failures:
// doubling from 1 s up to 1 min, each scaled by a factor in [0.5, 1).
func retryDelay(n int, r float64) time.Duration {
	d := time.Minute
	if n < 7 {
		d = min(time.Second<<(n-1), time.Minute)
	}
	return time.Duration(float64(d) * (0.5 + r/2))
}

func randFloat() float64 { return rand.Float64() }

// sleep waits for d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
