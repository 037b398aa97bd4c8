package vault

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/pgsecure/pgsecure/secrets"
)

// ErrDenied is wrapped by errors where Vault refused the login or the
// token's policy does not allow the request (HTTP 400 on login, 401, 403).
// It also wraps secrets.ErrInvalid: retrying will not help until the
// configuration (role, secret ID, policy) is fixed.
var ErrDenied error = deniedError{}

type deniedError struct{}

func (deniedError) Error() string { return "pgsecure/vault: access denied by Vault" }
func (deniedError) Unwrap() error { return secrets.ErrInvalid }

// ErrClosed is wrapped by errors from a Source used after Close. It also
// wraps secrets.ErrUnavailable.
var ErrClosed = fmt.Errorf("pgsecure/vault: source is closed: %w", secrets.ErrUnavailable)

// Error is the error type of every failed Vault request made by this
// package. Its message never contains a token, secret ID or password: it
// names the operation and the Vault path only.
//
// errors.Is reaches Kind (a secrets sentinel or ErrDenied) and errors.As
// reaches the underlying error, typically an *api.ResponseError.
type Error struct {
	Op   string // what was attempted: "read", "login", "renew", "revoke"
	Path string // the Vault path (never a secret)
	Kind error  // secrets.ErrNotFound, secrets.ErrUnavailable, secrets.ErrInvalid or ErrDenied
	Hint string // how to fix it
	Err  error  // the underlying error, may be nil
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("pgsecure/vault: %s %s: %s", e.Op, e.Path, kindText(e.Kind))
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	if e.Err != nil {
		msg += ": " + describe(e.Err)
	}
	return msg
}

// Unwrap lets errors.Is and errors.As reach both Kind and Err.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func kindText(kind error) string {
	switch {
	case errors.Is(kind, ErrDenied):
		return "access denied"
	case errors.Is(kind, secrets.ErrNotFound):
		return "secret not found"
	case errors.Is(kind, secrets.ErrUnavailable):
		return "Vault unavailable"
	default:
		return "secret is malformed"
	}
}

// describe summarises an underlying error without echoing request bodies:
// for a Vault response it gives the status code and Vault's own messages,
// which never repeat submitted values.
func describe(err error) string {
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := fmt.Sprintf("HTTP %d", re.StatusCode)
		if !re.RawError {
			for _, e := range re.Errors {
				msg += "; " + e
			}
		}
		return msg
	}
	return err.Error()
}

// classify turns an error from the Vault client into an *Error.
func classify(op, path string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	kind := secrets.ErrUnavailable
	hint := "check that Vault is reachable, unsealed and its TLS certificate is trusted"
	var re *api.ResponseError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cv):
		hint = "Vault's TLS certificate is not trusted: check the CA file (ca= or VAULT_CACERT) and the Vault host name"
	case errors.Is(err, api.ErrSecretNotFound):
		kind, hint = secrets.ErrNotFound, "check the mount and path"
	case errors.As(err, &re) && unknownRole(re):
		kind, hint = secrets.ErrNotFound, "no such role: check the mount and role name"
	case errors.As(err, &re):
		hint, kind = classifyStatus(op, re.StatusCode)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		hint = "the request was cancelled or timed out"
	default:
		var ne net.Error
		if !errors.As(err, &ne) {
			hint = "check the Vault address and CA file"
		}
	}
	return &Error{Op: op, Path: path, Kind: kind, Hint: hint, Err: err}
}

// classifyStatus returns the hint and the sentinel (kind) for an HTTP status.
func classifyStatus(op string, code int) (string, error) {
	switch {
	case code == http.StatusNotFound:
		return "check the mount and path", secrets.ErrNotFound
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		if op == "login" {
			return "check the role and its credentials", ErrDenied
		}
		return "the token's policy must allow this path; the token may have expired", ErrDenied
	case code == http.StatusBadRequest && op == "login":
		return "check the role and its credentials", ErrDenied
	case code == http.StatusTooManyRequests || code >= 500:
		return "Vault is sealed, overloaded or failing; retry later", secrets.ErrUnavailable
	default:
		return "Vault rejected the request", secrets.ErrInvalid
	}
}

// unknownRole reports the database engine's answer for a role that does
// not exist (HTTP 400 "unknown role: ...").
func unknownRole(re *api.ResponseError) bool {
	return re.StatusCode == http.StatusBadRequest &&
		slices.ContainsFunc(re.Errors, func(e string) bool { return strings.HasPrefix(e, "unknown role") })
}

// invalid reports a secret whose content cannot be used.
func invalid(path, what string) error {
	return &Error{Op: "read", Path: path, Kind: secrets.ErrInvalid, Hint: what}
}

// isDenied reports whether err means the token was refused, so that a
// fresh login may help.
func isDenied(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}
