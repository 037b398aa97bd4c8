package pool

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgsecure/pgsecure/internal/libpq"
	"github.com/pgsecure/pgsecure/internal/tlspolicy"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/refresh"
	"github.com/pgsecure/pgsecure/verify"
)

// State is what the pool-level hooks of one pool share. The connection
// pipeline itself (package internal/connect) gets only the read-only
// connect.Policy; State is its Observer.
type State struct {
	policy     *connect.Policy
	tls        *tlspolicy.Policy
	creds      *credStage         // nil when credentials come from the connection string
	auth       libpq.AuthSettings // the authentication settings as built, re-checked per connection
	log        func() *slog.Logger
	events     Events
	expiryWarn time.Duration
	warned     sync.Map // certificate issuer/serial -> struct{}: expiry warnings already given
	logins     loginLog // failed logins logged, per cause

	loadBalance bool // load_balance_hosts=random

	// startup is set while Build opens and checks its first connection: a
	// refusal then is returned by Build, so it is not logged as well.
	startup atomic.Bool
}

// bind puts pgsecure's TLS configuration on every host and its
// negotiation and authentication settings on cc.
func (s *State) bind(cc *pgx.ConnConfig) {
	for _, h := range libpq.Hosts(cc) {
		*h.TLS = s.tls.ConfigFor(h.Host)
	}
	cc.SSLNegotiation = s.negotiation()
	cc.RequireAuth = s.policy.Auth.String()
}

func (s *State) negotiation() string {
	if s.policy.Direct {
		return "direct"
	}
	return ""
}

// beforeConnect is the pool's BeforeConnect: credentials first, then the
// caller's hooks, then the re-check of the per-connection copy (TLS bound to
// each host, hooks a caller set since Config chained after pgsecure's).
func (s *State) beforeConnect(hooks []func(context.Context, *pgx.ConnConfig) error) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cc *pgx.ConnConfig) error {
		if err := s.checkTLS(ctx, cc, "the pgxpool.Config (changed after Config returned it)"); err != nil {
			return err
		}
		if s.creds != nil {
			if err := s.creds.apply(ctx, cc); err != nil {
				return err
			}
		}
		for _, fn := range hooks {
			if err := fn(ctx, cc); err != nil {
				return err
			}
		}
		if err := s.checkTLS(ctx, cc, "a Builder.BeforeConnect hook"); err != nil {
			return err
		}
		if s.loadBalance {
			libpq.ShuffleHosts(cc, rand.Shuffle) // load_balance_hosts=random: a fresh order per connection
		}
		s.bind(cc)
		connect.Install(&cc.Config, s.policy) // the pipeline, once, on this connection's copy
		if s.creds != nil && !s.policy.Auth.Allows(verify.AuthPassword) && s.creds.isLoginToken(cc.User, cc.Password) {
			// A login token answers a cleartext-password request (pgx checks
			// require_auth too); the authentication watch allows it only over
			// verified TLS and only for this token.
			cc.RequireAuth += "," + string(verify.AuthPassword)
		}
		return nil
	}
}

// checkTLS refuses a per-connection configuration whose TLS protection was
// removed, replaced or weakened; from says what changed it.
func (s *State) checkTLS(ctx context.Context, cc *pgx.ConnConfig, from string) error {
	const fix = "do not modify ConnConfig.TLSConfig or Fallbacks[i].TLSConfig of a pgsecure configuration; use the Builder's options"
	var err error
	for _, h := range libpq.Hosts(cc) {
		tc := *h.TLS
		switch {
		case libpq.IsUnixSocket(h.Host):
			err = libpq.UnixSocketError(h.Host, from, "do not point hosts at unix sockets in hooks")
		case tc == nil:
			err = configErr("TLSConfig", from, fmt.Sprintf("the TLS configuration for host %q was removed after pgsecure built it", h.Host), fix)
		case !s.tls.Owns(tc):
			err = configErr("TLSConfig", from, fmt.Sprintf("the TLS configuration for host %q was replaced after pgsecure built it", h.Host), fix)
		case tc.MinVersion < s.policy.MinVersion || tc.MaxVersion != s.tls.MaxVersion():
			err = configErr("TLSConfig", from, fmt.Sprintf("the TLS versions for host %q were changed after pgsecure built the configuration", h.Host),
				"use MinTLSVersion or ssl_min_protocol_version instead")
		}
		if err != nil {
			break
		}
	}
	switch {
	case err != nil:
	case cc.SSLNegotiation != s.negotiation():
		err = configErr("SSLNegotiation", from, fmt.Sprintf("%q was set after pgsecure built the configuration", cc.SSLNegotiation), "use sslnegotiation in the connection string")
	default:
		err = s.auth.Recheck(cc, from)
	}
	if err != nil {
		s.Refused(ctx, connect.Refusal{Kind: connect.RefusedConfiguration, Host: cc.Host, Stage: verify.StageConfig, Err: err})
	}
	return err
}

// afterConnect is the pool's AfterConnect: the connection must carry the
// report of the server-side proof (a last tripwire: it is missing only when
// the pipeline never ran), the credentials' expiry, then the caller's
// hooks.
func (s *State) afterConnect(hooks []func(context.Context, *pgx.Conn) error) func(context.Context, *pgx.Conn) error {
	return func(ctx context.Context, c *pgx.Conn) error {
		if err := connect.Verified(ctx, s.policy, c.PgConn()); err != nil {
			return err
		}
		if s.creds != nil {
			cc := c.Config()
			s.creds.succeeded(cc.User, cc.Password)
			if exp := s.creds.sessionEnds(cc.User, cc.Password); !exp.IsZero() {
				c.PgConn().CustomData()[expiresKey] = exp
			}
		}
		for _, fn := range hooks {
			if err := fn(ctx, c); err != nil {
				return err
			}
		}
		return nil
	}
}

const expiresKey = "pgsecure.credentials.expires"

// fresh reports whether a pooled connection may still be used: it is
// retired before the credentials it was opened with expire (a lease; not a
// login token, which matters only at login), instead of shortening every
// connection's lifetime.
func (s *State) fresh(c *pgx.Conn) bool {
	exp, ok := c.PgConn().CustomData()[expiresKey].(time.Time)
	return !ok || time.Now().Before(retireAt(exp))
}

// retireAt is when a connection opened with credentials expiring at exp is
// retired: refresh.RetireMargin (2 s) before exp, the pool's half of the one
// timing model (package secrets never hands out credentials within
// refresh.MinMargin of their expiry), so a connection opened with them serves
// queries for at least 2 s and none outlives them.
func retireAt(exp time.Time) time.Time {
	return exp.Add(-refresh.RetireMargin)
}

// Refused is the one path every refusal takes: one event, and one log line
// unless Build is about to return the same error.
func (s *State) Refused(ctx context.Context, r connect.Refusal) {
	if !s.startup.Load() {
		s.log().LogAttrs(ctx, slog.LevelWarn, "pgsecure: connection refused", slog.String("kind", string(r.Kind)),
			slog.String("host", r.Host), slog.String("stage", string(r.Stage)), slog.String("error", r.Err.Error()))
	}
	s.events.ConnectionRefused(ctx, r)
}

// Verified logs and reports a verified connection and warns about
// certificates close to expiry.
func (s *State) Verified(ctx context.Context, r verify.Report, t connect.Timings) {
	s.log().LogAttrs(ctx, slog.LevelDebug, "pgsecure: connection verified", slog.Any("report", r))
	s.events.ConnectionVerified(ctx, r, t)
	s.checkExpiry(ctx, r)
}

// checkExpiry warns once per certificate when the server's (or client's)
// certificate expires within expiryWarn.
func (s *State) checkExpiry(ctx context.Context, r verify.Report) {
	if s.expiryWarn <= 0 {
		return
	}
	certs := []verify.Certificate{r.Leaf()}
	if r.ClientCertificate != nil {
		certs = append(certs, *r.ClientCertificate)
	}
	now := time.Now()
	for i, c := range certs {
		if c.NotAfter.IsZero() || c.NotAfter.Sub(now) > s.expiryWarn {
			continue
		}
		if _, dup := s.warned.LoadOrStore(c.Issuer+"/"+c.SerialNumber, struct{}{}); dup {
			continue
		}
		which := "server"
		if i > 0 {
			which = "client"
		}
		days := c.DaysUntilExpiry(now)
		s.log().LogAttrs(ctx, slog.LevelWarn, "pgsecure: certificate expires soon",
			slog.String("which", which), slog.String("subject", c.Subject), slog.Time("not_after", c.NotAfter), slog.Int("days_left", days))
		s.events.CertificateExpiring(ctx, which, r, c, days)
	}
}

// hookPool installs the pool-level hooks around whatever cfg has (a
// caller's ConfigurePool may have set some).
func (s *State) hookPool(cfg *pgxpool.Config, before []func(context.Context, *pgx.ConnConfig) error, after []func(context.Context, *pgx.Conn) error) {
	if cfg.BeforeConnect != nil {
		before = append([]func(context.Context, *pgx.ConnConfig) error{cfg.BeforeConnect}, before...)
	}
	if cfg.AfterConnect != nil {
		after = append([]func(context.Context, *pgx.Conn) error{cfg.AfterConnect}, after...)
	}
	cfg.BeforeConnect = s.beforeConnect(before)
	cfg.AfterConnect = s.afterConnect(after)
	if s.creds == nil {
		return // no credentials that expire: nothing to retire
	}
	prepare := cfg.PrepareConn
	if prepare == nil && cfg.BeforeAcquire != nil { // deprecated, and ignored by pgxpool once PrepareConn is set
		acquire := cfg.BeforeAcquire
		prepare = func(ctx context.Context, c *pgx.Conn) (bool, error) { return acquire(ctx, c), nil }
		cfg.BeforeAcquire = nil
	}
	// PrepareConn, not AfterRelease: pgxpool releases asynchronously when
	// AfterRelease is set, which would cost a goroutine per query.
	cfg.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
		if !s.fresh(c) {
			return false, nil
		}
		if prepare != nil {
			return prepare(ctx, c)
		}
		return true, nil
	}
}

// Starting marks (true) and unmarks the start Build makes: a refusal
// meanwhile is returned by Build, so it is not logged as well.
func (s *State) Starting(on bool) { s.startup.Store(on) }
