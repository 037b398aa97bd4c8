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

// ErrClosed is wrapped by errors from a Source used after Close. It also
// wraps secrets.ErrUnavailable.
var ErrClosed = fmt.Errorf("pgsecure/vault: source is closed: %w", secrets.ErrUnavailable)

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

// configError reports a configuration that can never work
// (secrets.ErrInvalid); err, when set, is the cause.
func configError(hint string, err error) error {
	return &secrets.Error{Kind: secrets.ErrInvalid, Source: "vault", Op: "configure", Hint: hint, Err: err}
}

// vaultError builds the *secrets.Error of a failed Vault operation. op names
// the operation and the Vault path ("read database/creds/app"); the source's
// name is added by the Source (see secrets.Named). A Vault response is
// described by status and Vault's own messages only (see describe).
func vaultError(kind error, op, hint string, err error) error {
	if err != nil {
		err = secrets.Quiet(err, describe(err))
	}
	return &secrets.Error{Kind: kind, Op: op, Hint: hint, Err: err}
}

// classify turns an error from the Vault client into a *secrets.Error.
func classify(op, path string, err error) error {
	var e *secrets.Error
	if errors.As(err, &e) {
		return err
	}
	kind := secrets.ErrUnavailable
	hint := "Vault is unreachable: check that it is up, unsealed and its TLS certificate is trusted"
	var re *api.ResponseError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cv):
		hint = "Vault's TLS certificate is not trusted: check the CA file (ca= or VAULT_CACERT) and the Vault host name"
	case errors.Is(err, api.ErrSecretNotFound):
		kind, hint = secrets.ErrNotFound, "no secret at this path: check the mount and path"
	case errors.As(err, &re) && unknownRole(re):
		kind, hint = secrets.ErrNotFound, "no such role: check the mount and role name"
	case errors.As(err, &re):
		hint, kind = classifyStatus(op, re.StatusCode)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		hint = "Vault did not answer in time (the request was cancelled or timed out)"
	default:
		var ne net.Error
		if !errors.As(err, &ne) {
			hint = "the request to Vault failed: check the Vault address and CA file"
		}
	}
	return vaultError(kind, op+" "+path, hint, err)
}

// classifyStatus returns the hint and the sentinel (kind) for an HTTP status.
func classifyStatus(op string, code int) (string, error) {
	switch {
	case code == http.StatusNotFound:
		return "no secret at this path: check the mount and path", secrets.ErrNotFound
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		if op == "login" {
			return "Vault refused the login: check the role and its credentials", secrets.ErrAccessDenied
		}
		return "access denied: the token's policy must allow this path, or the token expired", secrets.ErrAccessDenied
	case code == http.StatusBadRequest && op == "login":
		return "Vault refused the login: check the role and its credentials", secrets.ErrAccessDenied
	case op == "renew" && code == http.StatusBadRequest:
		return "Vault no longer knows the lease (revoked or expired)", secrets.ErrNotFound
	case code == http.StatusTooManyRequests || code >= 500:
		return "Vault is sealed, overloaded or failing; retry later", secrets.ErrUnavailable
	default:
		return "Vault rejected the request as malformed: check the path and parameters", secrets.ErrInvalid
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
	return vaultError(secrets.ErrInvalid, "read "+path, what, nil)
}

// isDenied reports whether err means the token was refused, so that a
// fresh login may help.
func isDenied(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}
