package pgsecure

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

// Credentials makes each new connection take its user and password (and the
// host, port and database, when the source provides them) from src instead
// of the connection string and PGPASSWORD.
//
// Fetches go through secrets.Cached: a secrets.Cache (unless src is one
// already, or manages its own lifetime, as a Vault dynamic-credentials
// source does) that refreshes in the background before expiry without
// stalling callers, coalesces concurrent fetches into one backend call, and
// keeps serving unexpired credentials while the backend is down (the timing
// model is documented in package secrets).
// Config fetches once, so a source that cannot be reached fails Build at
// startup. Each connection remembers when the credentials it was opened
// with expire (a lease) and the pool retires it shortly before that,
// instead of shortening every connection's lifetime; a connection opened
// with a login token (secrets.Credentials.LoginToken: RDS IAM, Cloud SQL,
// AlloyDB, Entra ID) is kept, since the token matters only at login. When the server
// rejects a password (SQLSTATE 28P01), the credentials are invalidated (a
// rotating source may switch to its pending version) and the connection is
// retried with freshly fetched ones, within the same Acquire. While the
// source has nothing newer (a rotation half done: the secret changed before
// the database password, or after it), the login is tried again with short
// jittered backoff, within connect_timeout, with the source's current
// credentials and the previous ones (those this pool used before, or the
// source's own previous version, secrets.PreviousProvider), so either order
// converges as soon as the database and the secret agree. When they still
// disagree at the end of connect_timeout the error wraps
// ErrCredentialsRejected and the server's 28P01 and names the source. Fresh
// credentials rejected too end the connect with the server's error.
//
// src stays the caller's: pgsecure never closes it. A source holding leases
// (secrets.Closer) should be closed by the caller after the pool.
func (b *Builder) Credentials(src secrets.Source) *Builder {
	if src == nil {
		b.errs = append(b.errs, configErr("Credentials", "builder", "nil source", "pass a secrets.Source, e.g. from secrets.Open"))
	}
	b.creds = src
	return b
}

// CredentialCache tunes the cache Credentials puts in front of the source.
func (b *Builder) CredentialCache(o secrets.CacheOptions) *Builder {
	b.cacheOpts = o
	return b
}

// credStage is the first stage of every new connection when credentials
// come from a source, and the pipeline's connect.Credentials: it is told
// about rejected credentials and knows when each generation expires.
type credStage struct {
	cache  secrets.Source // a secrets.Cache, or the source itself when it manages its own lifetime
	src    secrets.Source // the caller's source
	name   string
	events *eventSink

	mu      sync.Mutex
	recent  []secrets.Credentials // the last generations handed out, newest last
	retried []secrets.Credentials // generations handed out by a retry
}

// maxGenerations bounds what credStage remembers of earlier generations.
const maxGenerations = 4

func (b *Builder) credentialStage(ctx context.Context, cfg *pgxpool.Config) (*credStage, error) {
	if b.creds == nil {
		return nil, nil
	}
	o := b.cacheOpts
	if o.Logger == nil {
		o.Logger = b.log()
	}
	s := &credStage{cache: secrets.Cached(b.creds, o), src: b.creds, name: secrets.NameOf(b.creds), events: &b.events}
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
		s.events.emit(ctx, SecretFailed{Time: time.Now(), Source: s.name, Err: err})
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
		s.events.emit(ctx, SecretFetched{Time: time.Now(), Source: s.name, Expires: c.Expires})
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
			s.events.emit(ctx, SecretFailed{Time: time.Now(), Source: s.name, Err: err})
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
