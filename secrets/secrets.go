// Package secrets defines where pgsecure gets database credentials from.
//
// A Source returns Credentials; sources are chosen by configuration through
// Open and a URI ("env:", "file:/run/secrets/db", "vault://...", "awssm://...",
// "rdsiam://...", "gcpiam://...", "azureiam://..."). Backends that need an SDK
// live in their own packages (secrets/vault, secrets/awssm) or modules
// (secrets/gcpiam, secrets/azureiam) and register their schemes when imported,
// so a program links only the SDKs it uses.
//
// Nothing in this package prints a secret: Secret and Credentials redact
// themselves in every fmt verb and in log/slog.
//
// # Timing model
//
// One model decides when credentials are fetched again, used by Cache, by
// Vault's lease renewal and by its lease replacement. Credentials fetched at
// t0 that expire at t0+L (Credentials.Expires) are:
//
//   - served from memory until the advisory point t0 + 2L/3, moved earlier
//     by up to L/10 of random jitter so that many processes do not refresh
//     at once (a Vault lease is renewed there);
//   - from the advisory point, served while ONE background fetch (or
//     renewal) runs; no caller waits for it;
//   - from the mandatory point Expires − L/10 (at least 4 s before
//     Expires), no longer handed out without a fetch: callers wait
//     for it, unless the backend already answered in this window with the
//     same credentials (nothing newer yet);
//   - never handed out within 4 s of Expires: the pool retires each
//     connection at least 2 s before its credentials expire, so a
//     connection opened with them serves queries for at least 2 s.
//
// Credentials without Expires (env, a KV secret) are fetched again in the
// background after CacheOptions.TTL (5 min by default, jittered by up to a
// tenth). After a failed fetch, the next one waits 1 s doubling up to 30 s,
// each scaled by a random factor in [0.5, 1), and callers are served the
// cached credentials until they are within 4 s of Expires: one warning per
// outage, one info when the backend recovers, and then an error wrapping
// ErrExpired that names the source. Each fetch runs detached from the caller that
// started it, bounded by CacheOptions.FetchTimeout (10 s).
//
// Sources that manage their own lifetime (LifetimeManager: a Vault
// dynamic-credentials source, a File source) follow the same model or
// re-read on change themselves, and Cached does not wrap them again. The
// pool retires each connection before the Expires of the credentials it
// was opened with, so no connection outlives its lease; except for login
// tokens (Credentials.LoginToken: RDS IAM, Cloud SQL and AlloyDB IAM,
// Entra ID), whose Expires bounds only when they may start a session.
//
// # Errors
//
// Every source returns *Error: it names the source by its redacted URI
// (see Namer), the operation, and what to fix, and wraps one of ErrNotFound,
// ErrAccessDenied, ErrInvalid, ErrExpired or ErrUnavailable (transient:
// retrying may help), plus the backend's own error.
package secrets

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Redacted is what every secret prints as.
const Redacted = "[REDACTED]"

// Errors that sources wrap. Callers test them with errors.Is.
var (
	// ErrNotFound: the source has no such secret (missing variable, file,
	// Vault path or AWS secret). Retrying will not help until it is created.
	ErrNotFound = errors.New("pgsecure/secrets: secret not found")
	// ErrUnavailable: the backend could not be reached or answered with a
	// transient failure. Retrying may help.
	ErrUnavailable = errors.New("pgsecure/secrets: secret backend unavailable")
	// ErrInvalid: the secret exists but its content is not usable
	// (malformed JSON, missing user or password field, ...).
	ErrInvalid = errors.New("pgsecure/secrets: secret is malformed")
	// ErrAccessDenied: the backend refused this client (missing permission,
	// bad or expired backend credentials). Retrying will not help until the
	// permission or the client's own credentials are fixed.
	ErrAccessDenied = errors.New("pgsecure/secrets: access to the secret denied")
	// ErrExpired: the credentials held are past their expiry and no fresh
	// ones could be fetched.
	ErrExpired = errors.New("pgsecure/secrets: credentials expired")
	// ErrUnknownScheme: Open was given a URI whose scheme no linked backend
	// registered.
	ErrUnknownScheme = errors.New("pgsecure/secrets: unknown secret source scheme")
)

// Secret is a value that never prints itself. Use Reveal to get it.
//
// It holds the value behind a pointer, so even where fmt cannot call its
// methods (a Secret or Credentials in an unexported field of the caller's
// struct, printed with %v) only an address is shown, never the value. The
// zero Secret is empty.
type Secret struct{ v *string }

// NewSecret wraps a value.
func NewSecret(value string) Secret { return Secret{v: &value} }

// Reveal returns the secret value. Call it only where the value is consumed
// (e.g. when handing the password to the driver).
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// Equal compares two secrets in constant time (for equal lengths).
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.Reveal()), []byte(o.Reveal())) == 1
}

// String implements fmt.Stringer with a redaction marker.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer with a redaction marker.
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb (%s %v %+v %#v %q %x ...)
// prints the redaction marker.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText keeps the secret out of encoders (JSON, YAML, ...).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Credentials are what a Source returns. Only Password is secret; the other
// fields may be logged.
type Credentials struct {
	User     string
	Password Secret
	// Host, Port and Database are optional; when set they override the
	// connection string's values for new connections.
	Host     string
	Port     uint16
	Database string
	// Expires is when the credentials stop working (a lease or token end).
	// Zero means they do not expire on their own.
	Expires time.Time
	// Version identifies this credential generation (a lease id, secret
	// version id or file hash). It is not secret.
	Version string
	// Source names where the credentials came from, for logs and errors
	// (e.g. "env", "file:/run/secrets/db", "vault:database/creds/app").
	Source string
	// LoginToken says that Password is a login token, not a password: short
	// lived, signed for this user and this server endpoint by the cloud's
	// identity service, and checked by the server only when a session
	// starts (RDS IAM, Cloud SQL and AlloyDB IAM, Microsoft Entra ID).
	// Replaying it elsewhere is useless, and so is keeping it for later.
	//
	// Only for a login token, and only over a TLS connection whose handshake
	// pgsecure verified, does pgsecure answer the server's request for a
	// cleartext password (AuthenticationCleartextPassword, which is how
	// those servers ask for the token); md5 and trust stay refused, and a
	// password (LoginToken false) is never sent in cleartext unless
	// require_auth allows it. Expires then bounds only when the token may
	// start a session: sessions opened with it are kept after it expires.
	//
	// Sources set it in code; no secret's content can set it.
	LoginToken bool
}

// Equal reports whether two credentials are the same in every field (the
// password compared in constant time).
func (c Credentials) Equal(o Credentials) bool {
	return c.User == o.User && c.Password.Equal(o.Password) && c.Host == o.Host && c.Port == o.Port &&
		c.Database == o.Database && c.Expires.Equal(o.Expires) && c.Version == o.Version && c.Source == o.Source &&
		c.LoginToken == o.LoginToken
}

// String implements fmt.Stringer without the password.
func (c Credentials) String() string {
	token := ""
	if c.LoginToken {
		token = " LoginToken:true"
	}
	return fmt.Sprintf("Credentials{User:%q Password:%s Host:%q Port:%d Database:%q Expires:%s Version:%q Source:%q%s}",
		c.User, Redacted, c.Host, c.Port, c.Database, fmtTime(c.Expires), c.Version, c.Source, token)
}

// GoString implements fmt.GoStringer without the password.
func (c Credentials) GoString() string { return "secrets." + c.String() }

// Format implements fmt.Formatter so that every verb prints the redacted form.
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(c.GoString()))
		return
	}
	_, _ = f.Write([]byte(c.String()))
}

// LogValue implements slog.LogValuer: every field but the password.
func (c Credentials) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("user", c.User), slog.String("password", Redacted), slog.String("source", c.Source)}
	if c.Host != "" {
		attrs = append(attrs, slog.String("host", c.Host))
	}
	if c.Port != 0 {
		attrs = append(attrs, slog.Int("port", int(c.Port)))
	}
	if c.Database != "" {
		attrs = append(attrs, slog.String("database", c.Database))
	}
	if !c.Expires.IsZero() {
		attrs = append(attrs, slog.Time("expires", c.Expires))
	}
	if c.Version != "" {
		attrs = append(attrs, slog.String("version", c.Version))
	}
	if c.LoginToken {
		attrs = append(attrs, slog.Bool("login_token", true))
	}
	return slog.GroupValue(attrs...)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// Source returns database credentials.
//
// Contract:
//   - Credentials may be called concurrently from many goroutines.
//   - It honours ctx: it returns promptly with ctx.Err() (wrapped) when ctx
//     is done.
//   - Errors are *Error values (or wrap one) that wrap ErrNotFound,
//     ErrInvalid, ErrUnavailable, ErrAccessDenied or ErrExpired (and the
//     backend's own error, reachable with errors.As), name the source, and
//     never contain a secret value.
//   - Returned Credentials have a non-empty User and Password unless the
//     source documents otherwise.
//
// Sources do not cache unless they say so (LifetimeManager); Cached shares
// fetches between connections.
type Source interface {
	Credentials(ctx context.Context) (Credentials, error)
}

// Invalidator is implemented by sources (and by Cache) that can react to the
// database rejecting credentials they returned (SQLSTATE 28P01, or 28000 for
// a Rotator): a cache drops them, a Vault lease is replaced, a rotating
// backend looks for the pending version. pgsecure calls Invalidate once
// per rejected connect, then fetches again: newer credentials are retried;
// otherwise it logs in again with backoff until connect_timeout (see
// PreviousProvider).
type Invalidator interface {
	Invalidate(rejected Credentials)
}

// PreviousProvider is implemented by sources that keep the credentials
// that were current before the last rotation (AWS Secrets Manager's
// AWSPREVIOUS stage). While the database rejects a source's current
// credentials and the source has nothing newer (the secret was rotated
// before the database password), pgsecure also logs in with the previous
// ones, which the database still accepts until its password changes.
// Previous returns an error wrapping ErrNotFound when there is no previous
// version.
type PreviousProvider interface {
	Previous(ctx context.Context) (Credentials, error)
}

// Closer is implemented by sources that hold resources or leases (a Vault
// lease watcher); a source asked to revoke leases on close does so in Close.
//
// Who closes a source: the caller, always. pgsecure never opens a source
// itself (the caller calls Open and passes the result to
// Builder.Credentials), and a pool does not close the source it was given:
// close it after the pool, which stops renewals and revokes leases if so
// configured.
type Closer interface {
	Close(ctx context.Context) error
}

// Close closes src if it is a Closer (a Cache or Chain passes the call on to
// the sources it wraps) and does nothing otherwise, so a program can close
// whatever source it opened with one call, after the pool:
//
//	defer secrets.Close(context.Background(), src) // deferred first: runs after pool.Close
//	defer pool.Close()
func Close(ctx context.Context, src Source) error {
	if cl, ok := src.(Closer); ok {
		return cl.Close(ctx)
	}
	return nil
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (Credentials, error)

// Credentials calls f(ctx).
func (f SourceFunc) Credentials(ctx context.Context) (Credentials, error) { return f(ctx) }
