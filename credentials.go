package pgsecure

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
// retried once with freshly fetched ones, within the same Acquire; if the
// source has nothing newer, or the fresh ones are rejected too, the
// server's error is returned.
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
	s := &credStage{cache: secrets.Cached(b.creds, o), name: secrets.NameOf(b.creds), events: &b.events}
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
	return c, nil
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
		if isUnixSocket(c.Host) {
			return unixSocketError(c.Host, "credentials from "+s.name, "store the server's TCP host name in the secret")
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
// are fetched for one retry. SQLSTATE 28000 (how RDS Proxy answers rotated
// credentials, and how a server answers a login token its PAM check
// refused) counts as a rejection only for sources that rotate and for login
// tokens.
func (s *credStage) Rejected(ctx context.Context, code, user, password string) (string, string, bool) {
	if code == "28000" && !rotates(s.cache) && !s.isLoginToken(user, password) {
		return "", "", false
	}
	rejected := secrets.Credentials{User: user, Password: secrets.NewSecret(password)}
	s.mu.Lock()
	known := find(s.recent, rejected)
	_, fromRetry := findIdx(s.retried, rejected)
	s.mu.Unlock()
	if inv, ok := s.cache.(secrets.Invalidator); ok && known != nil {
		inv.Invalidate(*known)
	}
	if fromRetry {
		return "", "", false // fresh credentials were rejected too: the server's error stands
	}
	fresh, err := s.fetch(ctx)
	if err != nil || same(fresh, rejected) {
		return "", "", false
	}
	s.mu.Lock()
	s.retried = remember(s.retried, fresh)
	s.mu.Unlock()
	return fresh.User, fresh.Password.Reveal(), true
}

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
