package vault

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

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
// in a cache). A Database source holds one lease at a time: it returns the
// same credentials until they are invalidated, their lease can no longer be
// renewed, or they near their end, and only then asks Vault for new ones.
type Source struct {
	client *Client
	kind   kind
	mount  string // secrets engine mount
	name   string // KV secret path or role name
	path   string // the Vault path read, e.g. "database/creds/app"
	cfg    config
	now    func() time.Time
	jitter func() float64 // uniform in [0, 1)

	mu     sync.Mutex
	cur    *lease // Database only
	fetch  single[secrets.Credentials]
	closed bool
	wg     sync.WaitGroup // lease watchers
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
func Database(c *Client, mount, role string, opts ...Option) (*Source, error) {
	return newSource(c, kindDatabase, mount, role, "creds", opts)
}

// StaticRole returns a Source for a static role of the database secrets
// engine, read from <mount>/static-creds/<role>. Credentials.Expires is the
// next rotation and Credentials.Version the time of the last rotation.
func StaticRole(c *Client, mount, role string, opts ...Option) (*Source, error) {
	return newSource(c, kindStatic, mount, role, "static-creds", opts)
}

func newSource(c *Client, k kind, mount, name, segment string, opts []Option) (*Source, error) {
	if c == nil {
		return nil, fmt.Errorf("pgsecure/vault: a *Client is required (see NewClient): %w", secrets.ErrInvalid)
	}
	mount, name = strings.Trim(mount, "/"), strings.Trim(name, "/")
	if mount == "" || name == "" {
		return nil, fmt.Errorf("pgsecure/vault: %s source needs a mount and a %s: %w", segment, nameKind(k), secrets.ErrInvalid)
	}
	if k != kindKV && strings.Contains(name, "/") {
		return nil, fmt.Errorf("pgsecure/vault: role name %q must not contain '/': %w", name, secrets.ErrInvalid)
	}
	cfg, err := buildConfig(k, opts)
	if err != nil {
		return nil, err
	}
	s := &Source{
		client: c, kind: k, mount: mount, name: name,
		path: mount + "/" + segment + "/" + name,
		cfg:  cfg, now: time.Now, jitter: randFloat,
	}
	s.fetch.mu = &s.mu
	return s, nil
}

func nameKind(k kind) string {
	if k == kindKV {
		return "secret path"
	}
	return "role"
}

// String names the source, e.g. "vault:database/creds/app".
func (s *Source) String() string { return "vault:" + s.path }

// Credentials returns credentials read from Vault. Errors are *Error values
// that wrap secrets.ErrNotFound, secrets.ErrUnavailable, secrets.ErrInvalid
// or ErrDenied, and ErrClosed after Close.
func (s *Source) Credentials(ctx context.Context) (secrets.Credentials, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return secrets.Credentials{}, ErrClosed
	}
	switch s.kind {
	case kindKV:
		return s.readKV(ctx)
	case kindStatic:
		return s.readStatic(ctx)
	}
	return s.leased(ctx)
}

// Invalidate tells a Database source that the database rejected
// credentials it returned: if they are the current ones (same Version, or
// rejected.Version is empty) the next Credentials call reads new ones. It has
// no effect on KV and static-role sources, which never hold credentials.
func (s *Source) Invalidate(rejected secrets.Credentials) {
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
		return fmt.Errorf("pgsecure/vault: closing %s: %w", s, ctx.Err())
	}
	if s.cfg.revokeOnClose && l != nil {
		return s.revoke(ctx, l.id)
	}
	return nil
}
