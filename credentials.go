package pgsecure

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure/secrets"
)

// Credentials makes each new connection take its user and password (and the
// host, port and database, when the source provides them) from src instead
// of the connection string and PGPASSWORD.
//
// Fetches go through a secrets.Cache (unless src is one already): it
// refreshes before expiry, coalesces concurrent fetches into one backend
// call, and keeps serving unexpired credentials while the backend is down.
// Config fetches once, so a source that cannot be reached fails Build at
// startup; when the credentials expire (a lease, a token), the pool's
// MaxConnLifetime is lowered below their lifetime. When the server rejects
// a password (SQLSTATE 28P01), the credentials are invalidated (a rotating
// source may switch to its pending version) and the connection retries once
// with freshly fetched ones, within the same Acquire (see retryState); if
// the source returns the same credentials, or they are rejected again, the
// server's error is returned.
//
// pgsecure does not close src: a source holding leases (secrets.Closer)
// should be closed by the caller after the pool.
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

// credHook applies fetched credentials to each new connection.
type credHook struct {
	cache  *secrets.Cache
	name   string
	e      *enforcer
	events *eventSink
	last   atomic.Pointer[secrets.Credentials]
	retry  bool // add the retry addresses (see retryState)
}

func (b *Builder) credentialHook(ctx context.Context, cfg *pgxpool.Config) (*credHook, error) {
	if b.creds == nil {
		return nil, nil
	}
	o := b.cacheOpts
	if o.Logger == nil {
		o.Logger = b.log()
	}
	cache := secrets.NewCache(b.creds, o)
	h := &credHook{cache: cache, name: secrets.NameOf(b.creds), events: &b.events}
	c, err := h.fetch(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.useEndpoint(cfg.ConnConfig, c); err != nil {
		return nil, err
	}
	if !c.Expires.IsZero() {
		if life := time.Until(c.Expires) * 3 / 4; life > time.Second && (cfg.MaxConnLifetime == 0 || cfg.MaxConnLifetime > life) {
			cfg.MaxConnLifetime = life
		}
	}
	return h, nil
}

func (h *credHook) fetch(ctx context.Context) (secrets.Credentials, error) {
	c, err := h.cache.Credentials(ctx)
	if err != nil {
		h.events.emit(Event{Kind: EventSecretFailed, Source: h.name, Err: err})
		return secrets.Credentials{}, fmt.Errorf("pgsecure: credentials from %s: %w", h.name, err)
	}
	if prev := h.last.Swap(&c); prev == nil || prev.Version != c.Version || !prev.Password.Equal(c.Password) {
		h.events.emit(Event{Kind: EventSecretFetched, Source: h.name, Expires: c.Expires})
	}
	return c, nil
}

// apply sets the credentials on the per-connection config (BeforeConnect).
func (h *credHook) apply(ctx context.Context, cc *pgx.ConnConfig) error {
	c, err := h.fetch(ctx)
	if err != nil {
		return err
	}
	cc.User = c.User
	cc.Password = c.Password.Reveal()
	if c.Database != "" {
		cc.Database = c.Database
	}
	if err := h.useEndpoint(cc, c); err != nil {
		return err
	}
	if h.retry {
		h.e.addRetry(cc)
	}
	return nil
}

// useEndpoint puts the host and port the credentials name, if any, on cc
// (a host replaces the whole host list; BeforeConnect's re-check then binds
// the TLS configuration to it).
func (h *credHook) useEndpoint(cc *pgx.ConnConfig, c secrets.Credentials) error {
	if c.Host != "" {
		if isUnixSocket(c.Host) {
			return unixSocketError(c.Host, "credentials from "+h.name, "store the server's TCP host name in the secret")
		}
		cc.Host = c.Host
		cc.Fallbacks = nil
	}
	if c.Port != 0 {
		cc.Port = c.Port
	}
	return nil
}

// rejected is called when the server answered 28P01 for user/password.
func (h *credHook) rejected(user, password string) {
	if c := h.last.Load(); c != nil && c.User == user && c.Password.Equal(secrets.NewSecret(password)) {
		h.cache.Invalidate(*c)
	}
}
