package vault

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgsecure/pgsecure/internal/refresh"
	"github.com/pgsecure/pgsecure/secrets"
)

type kind int

const (
	kindKV kind = iota + 1
	kindDatabase
	kindStatic
)

// Source reads database credentials from Vault. It implements
// secrets.Source, secrets.Invalidator and secrets.Closer and is safe for
// concurrent use.
//
// KV and static-role sources read Vault on every Credentials call (wrap them
// in a cache: secrets.Cached does). A Database source holds one lease at a
// time and manages its lifetime (see the package documentation): it returns
// the same credentials until they are invalidated or replaced, and callers
// wait for Vault only when no valid lease is held.
type Source struct {
	client *Client
	kind   kind
	mount  string // secrets engine mount
	secret string // KV secret path or role name
	path   string // the Vault path read, e.g. "database/creds/app"
	name   string // the redacted URI, e.g. "vault://vault:8200/database/creds/app"
	cfg    config
	now    func() time.Time
	jitter func() float64 // uniform in [0, 1)

	fetch refresh.Group[secrets.Credentials] // Database only: one lease read at a time

	mu          sync.Mutex
	cur         *lease    // Database only
	failures    int       // consecutive failed lease reads
	outageSince time.Time // first failure of the streak
	retryAt     time.Time // no background read before this, after a failure
	closed      bool
	wg          sync.WaitGroup // lease watchers

	rejected atomic.Pointer[secrets.Credentials] // static roles: the database rejected these
}

// KV returns a Source that reads a KV version 2 secret at <mount>/data/<path>.
// Credentials.Version is the KV version number read. Field names default to
// "username" and "password"; see the With*Field options.
func KV(c *Client, mount, path string, opts ...Option) (*Source, error) {
	return newSource(c, kindKV, mount, path, "data", opts)
}

// Database returns a Source for dynamic credentials of the database secrets
// engine, read from <mount>/creds/<role>. Credentials.Expires is the end of
// the lease and Credentials.Version its lease ID. The lease is renewed in the
// background at about two thirds of its life (with jitter, and with backoff
// after failures); when it cannot be renewed, or its max TTL is near, the
// next Credentials call reads new credentials. Close stops the renewal.
// The lease's end ends the session's right to exist (Vault drops the role),
// so the pool retires each connection before the Expires of the lease it was
// opened with. The credentials are passwords, not login tokens: they are
// never sent in cleartext.
func Database(c *Client, mount, role string, opts ...Option) (*Source, error) {
	return newSource(c, kindDatabase, mount, role, "creds", opts)
}

// StaticRole returns a Source for a static role of the database secrets
// engine, read from <mount>/static-creds/<role>. Credentials.Version is the
// time of the last rotation; Expires is zero (see the package
// documentation).
func StaticRole(c *Client, mount, role string, opts ...Option) (*Source, error) {
	return newSource(c, kindStatic, mount, role, "static-creds", opts)
}

func newSource(c *Client, k kind, mount, name, segment string, opts []Option) (*Source, error) {
	if c == nil {
		return nil, configError("a *Client is required (see NewClient)", nil)
	}
	mount, name = strings.Trim(mount, "/"), strings.Trim(name, "/")
	if mount == "" || name == "" {
		return nil, configError(fmt.Sprintf("a %s source needs a mount and a %s", segment, nameKind(k)), nil)
	}
	if k != kindKV && strings.Contains(name, "/") {
		return nil, configError(fmt.Sprintf("role name %q must not contain '/'", name), nil)
	}
	cfg, err := buildConfig(k, opts)
	if err != nil {
		return nil, err
	}
	path := mount + "/" + segment + "/" + name
	return &Source{
		client: c, kind: k, mount: mount, secret: name, path: path, name: sourceName(c, path),
		cfg: cfg, now: time.Now, jitter: refresh.Rand,
	}, nil
}

func nameKind(k kind) string {
	if k == kindKV {
		return "secret path"
	}
	return "role"
}

// sourceName is the URI that names a source: vault:// (https) or
// vault+http:// and Vault's host and port, then the path read. It holds no
// user-info or query, so no secret.
func sourceName(c *Client, path string) string {
	scheme, host := "vault", c.api.Address()
	if u, err := url.Parse(host); err == nil {
		if u.Scheme == "http" {
			scheme = "vault+http"
		}
		host = u.Host
	}
	return scheme + "://" + host + "/" + path
}

// Name names the source by its redacted URI, e.g.
// "vault://vault.example.com:8200/database/creds/app". It implements
// secrets.Namer.
func (s *Source) Name() string { return s.name }

// String returns Name.
func (s *Source) String() string { return s.name }

// ManagesLifetime implements secrets.LifetimeManager: a Database source
// renews and replaces its lease itself, so secrets.Cached does not wrap it
// in a second timer. KV and static-role sources read Vault on every call
// and should be cached.
func (s *Source) ManagesLifetime() bool { return s.kind == kindDatabase }

// Rotates implements secrets.Rotator: database credentials, dynamic or of a
// static role, rotate; a KV secret is taken as fixed.
func (s *Source) Rotates() bool { return s.kind != kindKV }

// Credentials returns credentials read from Vault. Errors are
// *secrets.Error values naming the source that wrap secrets.ErrNotFound,
// secrets.ErrUnavailable, secrets.ErrInvalid, secrets.ErrAccessDenied or
// (a Database source whose lease ended while Vault failed)
// secrets.ErrExpired; ErrClosed after Close.
func (s *Source) Credentials(ctx context.Context) (secrets.Credentials, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return secrets.Credentials{}, ErrClosed
	}
	var creds secrets.Credentials
	var err error
	switch s.kind {
	case kindKV:
		creds, err = s.readKV(ctx)
	case kindStatic:
		if rejected := s.rejected.Swap(nil); rejected != nil {
			// Vault changes the password in the database before it stores
			// it: wait for the read to show the rotated one.
			creds, err = refresh.AwaitNewer(ctx, s.jitter, s.readStatic, func(c secrets.Credentials) bool {
				return c.Password.Equal(rejected.Password)
			})
			break
		}
		creds, err = s.readStatic(ctx)
	default:
		return s.leased(ctx)
	}
	return creds, secrets.Named(err, s.name)
}

// Invalidate tells the source that the database rejected credentials it
// returned. A Database source, if they are the current ones (same Version,
// or rejected.Version is empty), reads new ones on the next call. A static
// role's next call, if Vault still returns the rejected password (it is
// rotating), reads again with jittered backoff from 100 ms for up to about
// 6 s, within the caller's deadline. A KV source ignores the call.
func (s *Source) Invalidate(rejected secrets.Credentials) {
	if s.kind == kindStatic {
		s.rejected.Store(&rejected)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.cur; l != nil && (rejected.Version == "" || rejected.Version == l.id) {
		s.retireLocked(l)
	}
}

// Close stops lease renewal and, with WithRevokeOnClose, revokes the
// current lease. After Close, Credentials returns ErrClosed. Close waits for
// background renewals to stop, or for ctx to end.
func (s *Source) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	l := s.cur
	if l != nil {
		s.retireLocked(l)
	}
	s.mu.Unlock()

	stopped := make(chan struct{})
	go func() { s.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		return &secrets.Error{Source: s.name, Op: "close", Hint: "gave up waiting for lease renewals to stop", Err: ctx.Err()}
	}
	if s.cfg.revokeOnClose && l != nil {
		return s.revoke(ctx, l.id)
	}
	return nil
}
