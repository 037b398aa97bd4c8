package vault

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/pgsecure/pgsecure/internal/refresh"
	"github.com/pgsecure/pgsecure/secrets"
)

// lease is the credentials a Database source currently hands out. Fields
// other than id and ttl are guarded by Source.mu.
type lease struct {
	id      string
	ttl     time.Duration // duration as first issued
	creds   secrets.Credentials
	retired bool               // must not be handed out again (rejected, closed)
	stale   bool               // to be replaced in the background; still valid until Expires
	stop    context.CancelFunc // stops the watcher; nil when none runs
}

// leased returns the current lease's credentials. Callers wait for Vault
// only when no valid lease is held or the current one is in its mandatory
// window (see refresh.For); a lease due for replacement (max TTL near,
// renewal failed) is replaced by one background read while it is still
// served. Concurrent callers share one read.
func (s *Source) leased(ctx context.Context) (secrets.Credentials, error) {
	creds, err := s.fetch.Do(ctx, s.leaseReady(true), requestTimeout, s.replaceLease)
	if err != nil {
		if ctx.Err() != nil {
			return secrets.Credentials{}, &secrets.Error{Source: s.name, Op: "read " + s.path,
				Hint: "gave up waiting for credentials", Err: context.Cause(ctx)}
		}
		return secrets.Credentials{}, secrets.Named(err, s.name)
	}
	s.fetch.Go(ctx, s.leaseReady(false), requestTimeout, s.replaceLease)
	return creds, nil
}

// leaseReady reports the current lease when it needs no read: for a caller
// that would wait (wait), while it is valid and before its mandatory window
// (or, after a failed read, until it expires); for a background read, while
// it is not stale and before its advisory point, or while backing off.
func (s *Source) leaseReady(wait bool) refresh.Ready[secrets.Credentials] {
	return func() (secrets.Credentials, bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return secrets.Credentials{}, false, ErrClosed
		}
		l := s.cur
		if l == nil || l.retired {
			return secrets.Credentials{}, !wait, nil // nothing to refresh in the background
		}
		now := s.now()
		exp := l.creds.Expires
		if !refresh.Usable(exp, now) {
			return l.creds, !wait, nil
		}
		if wait {
			return l.creds, s.failures > 0 || exp.IsZero() || now.Before(exp.Add(-refresh.Margin(l.ttl))), nil
		}
		due := l.stale || s.failures > 0 || (!exp.IsZero() && !now.Before(exp.Add(-refresh.Margin(l.ttl))))
		return l.creds, !due || now.Before(s.retryAt), nil
	}
}

// replaceLease reads a new lease. When that fails while the current lease
// is still valid, it serves the current one (one warning per outage) and
// retries later with backoff; past its expiry the error wraps
// secrets.ErrExpired and names the source.
func (s *Source) replaceLease(ctx context.Context) (secrets.Credentials, error) {
	creds, err := s.newLease(ctx)
	now := s.now()
	s.mu.Lock()
	if err == nil {
		failures, since := s.failures, s.outageSince
		s.failures, s.outageSince = 0, time.Time{}
		s.mu.Unlock()
		if failures > 0 {
			s.cfg.logger.Info("pgsecure/vault: Vault recovered", "source", s.name, "failed_reads", failures,
				"outage", now.Sub(since))
		}
		return creds, nil
	}
	if errors.Is(err, ErrClosed) {
		s.mu.Unlock()
		return secrets.Credentials{}, err
	}
	s.failures++
	first := s.failures == 1
	if first {
		s.outageSince = now
	}
	s.retryAt = now.Add(refresh.Backoff(s.failures, s.jitter()))
	l := s.cur
	var cur secrets.Credentials
	valid := l != nil && !l.retired && refresh.Usable(l.creds.Expires, now)
	expired := l != nil && !l.retired && !valid
	if l != nil {
		cur = l.creds
	}
	since := s.outageSince
	s.mu.Unlock()
	err = secrets.Named(err, s.name)
	switch {
	case valid:
		if first {
			s.cfg.logger.Warn("pgsecure/vault: reading new credentials failed; serving the current lease until it expires",
				"source", s.name, "lease_id", l.id, "expires", cur.Expires, "error", err)
		}
		return cur, nil
	case expired:
		return secrets.Credentials{}, &secrets.Error{Kind: secrets.ErrExpired, Source: s.name, Op: "read " + s.path,
			Hint: "the lease expires at " + cur.Expires.UTC().Format(time.RFC3339) + " (too soon to open a connection with) and Vault has been failing since " +
				since.UTC().Format(time.RFC3339) + "; restore Vault or fix the error below", Err: err}
	}
	return secrets.Credentials{}, err
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
		"source", s.name, "user", creds.User, "lease_id", l.id, "ttl", l.ttl, "renewable", sec.Renewable)
	return creds, nil
}

// retireLocked marks l never to be handed out again and stops its watcher.
func (s *Source) retireLocked(l *lease) {
	l.retired = true
	if l.stop != nil {
		l.stop()
		l.stop = nil
	}
}

// watch renews l at the advisory point of each grant (see refresh.For) until
// it is retired, cannot be renewed, or reaches its max TTL; then it marks l
// stale and starts its replacement in the background, while l is still
// served until its mandatory window.
func (s *Source) watch(ctx context.Context, l *lease) {
	defer s.wg.Done()
	ttl := l.ttl       // duration granted by the last issue or renewal
	granted := s.now() // when it was granted
	wait := refresh.RenewDelay(ttl, s.jitter())
	capped := false // the last renewal did not give a full ttl: max TTL is near
	// left is how long the lease is still handed out: until its last tenth.
	left := func(now time.Time) time.Duration { return granted.Add(ttl).Sub(now) - refresh.Margin(l.ttl) }
	for failures := 0; ; {
		if !sleep(ctx, wait) {
			return
		}
		if capped {
			s.replace(ctx, l, "max TTL reached", nil)
			return
		}
		sec, err := s.renewLease(ctx, l.id, left(s.now()))
		if ctx.Err() != nil {
			return
		}
		now := s.now()
		if err != nil {
			remaining := left(now)
			if permanent(err) || remaining <= 0 {
				s.replace(ctx, l, "renewal failed", err)
				return
			}
			failures++
			wait = min(refresh.Backoff(failures, s.jitter()), remaining)
			level := slog.LevelDebug // one warning per outage
			if failures == 1 {
				level = slog.LevelWarn
			}
			s.cfg.logger.Log(ctx, level, "pgsecure/vault: lease renewal failed; will retry",
				"source", s.name, "lease_id", l.id, "retry_in", wait, "error", err)
			continue
		}
		if failures > 0 {
			s.cfg.logger.Info("pgsecure/vault: lease renewed again after failures", "source", s.name,
				"lease_id", l.id, "failed_renewals", failures)
		}
		failures = 0
		ttl, granted = time.Duration(sec.LeaseDuration)*time.Second, now
		capped = ttl < l.ttl*9/10
		s.mu.Lock()
		l.creds.Expires = now.Add(ttl)
		s.mu.Unlock()
		s.cfg.logger.Debug("pgsecure/vault: lease renewed", "source", s.name, "lease_id", l.id, "ttl", ttl)
		wait = refresh.RenewDelay(ttl, s.jitter())
	}
}

// replace marks l stale, if it is still current, and starts reading its
// replacement in the background.
func (s *Source) replace(ctx context.Context, l *lease, why string, err error) {
	s.mu.Lock()
	current := s.cur == l
	if current {
		l.stale = true
	}
	s.mu.Unlock()
	attrs := []any{"source", s.name, "lease_id", l.id, "reason", why}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	s.cfg.logger.Info("pgsecure/vault: replacing the database credentials", attrs...)
	if current {
		s.fetch.Go(ctx, s.leaseReady(false), requestTimeout, s.replaceLease)
	}
}

// minRenewTimeout is the least time one renewal attempt is given.
const minRenewTimeout = 2 * time.Second

// renewLease renews lease id once, bounded so that a Vault that accepts the
// request and never answers counts as a failure (logged and retried) while
// the lease can still be served: the attempt gets useful, the time left
// before the lease stops being handed out, at least minRenewTimeout and at
// most requestTimeout.
func (s *Source) renewLease(ctx context.Context, id string, useful time.Duration) (*api.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, min(max(useful, minRenewTimeout), requestTimeout))
	defer cancel()
	var sec *api.Secret
	err := s.client.do(ctx, func(c *api.Client) (err error) {
		sec, err = c.Sys().RenewWithContext(ctx, id, 0)
		return err
	})
	if err == nil && sec == nil {
		err = errors.New("empty renewal response")
	}
	if err != nil {
		return nil, secrets.Named(classify("renew", "sys/leases/renew", err), s.name)
	}
	return sec, nil
}

func (s *Source) revoke(ctx context.Context, id string) error {
	err := s.client.do(ctx, func(c *api.Client) error { return c.Sys().RevokeWithContext(ctx, id) })
	if err != nil {
		return secrets.Named(classify("revoke", "sys/leases/revoke", err), s.name)
	}
	s.cfg.logger.Info("pgsecure/vault: lease revoked", "source", s.name, "lease_id", id)
	return nil
}

// permanent reports a renewal failure that retrying cannot fix (the lease
// is gone or not renewable).
func permanent(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 &&
		re.StatusCode != http.StatusTooManyRequests
}

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
