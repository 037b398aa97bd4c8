package pool

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pgsecure/pgsecure/internal/libpq"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/secrets"
)

// credStage is the first stage of every new connection when credentials
// come from a source, and the pipeline's connect.Credentials: it is told
// about rejected credentials and knows when each generation expires.
type credStage struct {
	cache  secrets.Source // a secrets.Cache, or the source itself when it manages its own lifetime
	src    secrets.Source // the caller's source
	name   string
	events Events

	mu      sync.Mutex
	recent  []secrets.Credentials // the last generations handed out, newest last
	retried []secrets.Credentials // generations handed out by a retry
}

// maxGenerations bounds what credStage remembers of earlier generations.
const maxGenerations = 4

func (b *Options) credentialStage(ctx context.Context, cfg *pgxpool.Config) (*credStage, error) {
	if b.Credentials == nil {
		return nil, nil
	}
	o := b.CacheOptions
	if o.Logger == nil {
		o.Logger = b.Log()
	}
	s := &credStage{cache: secrets.Cached(b.Credentials, o), src: b.Credentials, name: secrets.NameOf(b.Credentials), events: b.Events}
	c, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.useEndpoint(cfg.ConnConfig, c); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *credStage) fetch(ctx context.Context) (secrets.Credentials, error) {
	c, err := s.cache.Credentials(ctx)
	if err != nil {
		s.events.SecretFailed(ctx, s.name, err)
		return secrets.Credentials{}, fmt.Errorf("pgsecure: credentials from %s: %w", s.name, err)
	}
	return s.note(ctx, c), nil
}

// note remembers c as the newest generation (an event when it is new).
func (s *credStage) note(ctx context.Context, c secrets.Credentials) secrets.Credentials {
	s.mu.Lock()
	isNew := len(s.recent) == 0 || !same(s.recent[len(s.recent)-1], c)
	if isNew {
		s.recent = remember(s.recent, c)
	} else {
		s.recent[len(s.recent)-1] = c // same credentials, renewed lease: Expires follows the renewal
	}
	s.mu.Unlock()
	if isNew {
		s.events.SecretFetched(ctx, s.name, c.Expires)
	}
	return c
}

// apply sets the credentials on the per-connection config (BeforeConnect).
func (s *credStage) apply(ctx context.Context, cc *pgx.ConnConfig) error {
	c, err := s.fetch(ctx)
	if err != nil {
		return err
	}
	cc.User = c.User
	cc.Password = c.Password.Reveal()
	if c.Database != "" {
		cc.Database = c.Database
	}
	return s.useEndpoint(cc, c)
}

// useEndpoint puts the host and port the credentials name, if any, on cc
// (a host replaces the whole host list; BeforeConnect then binds the TLS
// configuration to it).
func (s *credStage) useEndpoint(cc *pgx.ConnConfig, c secrets.Credentials) error {
	if c.Host != "" {
		if libpq.IsUnixSocket(c.Host) {
			return libpq.UnixSocketError(c.Host, "credentials from "+s.name, "store the server's TCP host name in the secret")
		}
		cc.Host = c.Host
		cc.Fallbacks = nil
	}
	if c.Port != 0 {
		cc.Port = c.Port
	}
	return nil
}

// Rejected implements connect.Credentials: the rejected generation is
// invalidated and, unless it came from a retry already, fresh credentials
// are fetched for one retry; when the source has nothing newer within
// rejectWait, the pipeline logs in again with backoff (Candidates). SQLSTATE
// 28000 (how RDS Proxy answers rotated credentials, and how a server answers
// a login token its PAM check refused) counts as a rejection only for
// sources that rotate and for login tokens. A rejected login token is
// replaced by a fresh one once; a token source with nothing fresh ends the
// connect (the same token would be refused again).
func (s *credStage) Rejected(ctx context.Context, code, user, password string) (connect.Login, connect.Retry) {
	token := s.isLoginToken(user, password)
	if code == "28000" && !rotates(s.cache) && !token {
		return connect.Login{}, connect.RetryNone
	}
	rejected := secrets.Credentials{User: user, Password: secrets.NewSecret(password)}
	s.mu.Lock()
	var known *secrets.Credentials
	if k := find(s.recent, rejected); k != nil {
		c := *k // a copy: note may update the entry in place (a renewed lease)
		known = &c
	}
	_, fromRetry := findIdx(s.retried, rejected)
	s.mu.Unlock()
	if inv, ok := s.cache.(secrets.Invalidator); ok && known != nil {
		inv.Invalidate(*known)
	}
	if fromRetry {
		return connect.Login{}, connect.RetryNone // fresh credentials were rejected too: the server's error stands
	}
	wctx, cancel := context.WithTimeout(ctx, rejectWait)
	defer cancel()
	fresh, err := s.fetchWithin(wctx)
	if err != nil || same(fresh, rejected) {
		if token {
			return connect.Login{}, connect.RetryNone
		}
		return connect.Login{}, connect.RetryLater
	}
	s.mu.Lock()
	s.retried = remember(s.retried, fresh)
	s.mu.Unlock()
	return connect.Login{User: fresh.User, Password: fresh.Password.Reveal()}, connect.RetryFresh
}

// rejectWait is how long Rejected lets a source look for credentials newer
// than rejected ones (a file source re-reads, a rotating backend reads its
// pending version) before the pipeline starts logging in again.
const rejectWait = 100 * time.Millisecond

// fetchWithin is fetch bounded by ctx: running out of ctx is not a source
// failure worth an event.
func (s *credStage) fetchWithin(ctx context.Context) (secrets.Credentials, error) {
	c, err := s.cache.Credentials(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.events.SecretFailed(ctx, s.name, err)
		}
		return secrets.Credentials{}, err
	}
	return s.note(ctx, c), nil
}

// Candidates implements connect.Credentials: the source's current
// credentials (read again), then the generation before them, which the
// database still accepts when the secret was rotated first: the one this
// pool used before, or the source's own previous version
// (secrets.PreviousProvider, e.g. AWSPREVIOUS).
func (s *credStage) Candidates(ctx context.Context, user, password string) []connect.Login {
	rejected := secrets.Credentials{User: user, Password: secrets.NewSecret(password)}
	cur, err := s.fetchWithin(ctx)
	if err != nil {
		cur = rejected
	}
	out := []connect.Login{{User: cur.User, Password: cur.Password.Reveal()}}
	if !same(cur, rejected) {
		return out // newer: retried as it is
	}
	add := func(c secrets.Credentials) {
		for _, l := range out {
			if l.User == c.User && l.Password == c.Password.Reveal() {
				return
			}
		}
		out = append(out, connect.Login{User: c.User, Password: c.Password.Reveal()})
	}
	s.mu.Lock()
	for i := len(s.recent) - 1; i >= 0; i-- {
		if !same(s.recent[i], cur) {
			add(s.recent[i]) // the newest earlier generation only
			break
		}
	}
	s.mu.Unlock()
	if p, ok := s.src.(secrets.PreviousProvider); ok {
		if prev, err := p.Previous(ctx); err == nil && prev.User != "" {
			add(prev)
		}
	}
	return out
}

// Retrying implements connect.Credentials: a rejection of credentials
// handed to pgx's retry is final.
func (s *credStage) Retrying(user, password string) {
	s.mu.Lock()
	s.retried = remember(s.retried, secrets.Credentials{User: user, Password: secrets.NewSecret(password)})
	s.mu.Unlock()
}

// Name implements connect.Credentials.
func (s *credStage) Name() string { return s.name }

// succeeded is told that a connection logged in with user/password: a
// generation handed out by a retry has proven itself and may be retried
// from again.
func (s *credStage) succeeded(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := findIdx(s.retried, secrets.Credentials{User: user, Password: secrets.NewSecret(password)}); ok {
		s.retried = append(s.retried[:i], s.retried[i+1:]...)
	}
}

// Expiry implements connect.Credentials.
func (s *credStage) Expiry(user, password string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := find(s.recent, secrets.Credentials{User: user, Password: secrets.NewSecret(password)}); c != nil {
		return c.Expires
	}
	return time.Time{}
}

// LoginToken implements connect.Credentials.
func (s *credStage) LoginToken(user, password string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := find(s.recent, secrets.Credentials{User: user, Password: secrets.NewSecret(password)})
	return s.name, c != nil && c.LoginToken
}

func (s *credStage) isLoginToken(user, password string) bool {
	_, ok := s.LoginToken(user, password)
	return ok
}

// sessionEnds is when a session opened with user/password must end: the
// Expires of a lease (its role is dropped then), zero for a login token
// (it matters only at login) and for credentials without expiry.
func (s *credStage) sessionEnds(user, password string) time.Time {
	if s.isLoginToken(user, password) {
		return time.Time{}
	}
	return s.Expiry(user, password)
}

// rotates reports whether a source's credentials change on a schedule.
func rotates(src any) bool {
	r, ok := src.(secrets.Rotator)
	return ok && r.Rotates()
}

func same(a, b secrets.Credentials) bool { return a.User == b.User && a.Password.Equal(b.Password) }

func remember(list []secrets.Credentials, c secrets.Credentials) []secrets.Credentials {
	list = append(list, c)
	if len(list) > maxGenerations {
		list = list[len(list)-maxGenerations:]
	}
	return list
}

func findIdx(list []secrets.Credentials, c secrets.Credentials) (int, bool) {
	for i := len(list) - 1; i >= 0; i-- {
		if same(list[i], c) {
			return i, true
		}
	}
	return -1, false
}

func find(list []secrets.Credentials, c secrets.Credentials) *secrets.Credentials {
	if i, ok := findIdx(list, c); ok {
		return &list[i]
	}
	return nil
}
