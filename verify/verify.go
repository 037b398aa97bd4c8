// Package verify describes how a pgsecure connection was verified (Report,
// attached to every connection and returned by pgsecure.ConnReport and
// pgsecure.ReportOf), the stages of a connection attempt (Stage), and the
// errors a refused connection carries
// (Error, TimeoutError, AuthMethodError, ClientCertificateRequiredError;
// the root package re-exports them).
//
// Every new physical connection made by a pgsecure pool is verified twice:
//
//   - locally, before any credential is sent: a completed TLS handshake at or
//     above the minimum version, whose chain leads to the pinned roots and
//     names the host (libpq's rules), matching any SPKI pins;
//   - from the server's side, after authentication: by channel binding (a
//     completed SCRAM-SHA-256-PLUS exchange) or by asking the server for its
//     own view of the backend (Report.Proof says which).
//
// Either failure is an error wrapping pgsecure.ErrNotEncrypted. The server-side
// proof describes only the last network hop: behind a pooler such as
// PgBouncer, the server's view describes the pooler's connection to it.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/internal/shared"
)

// Error is a refused connection: where in the connection it was caught and
// what was seen. It wraps pgsecure.ErrNotEncrypted and, when there is one,
// the cause.
type Error struct {
	// Addr is the server address (ip:port).
	Addr string
	// Stage is where in the connection attempt the refusal happened:
	// StageConfig, StageTCP (nothing but a TLS request may be sent),
	// StageTLSRequest, StageTLSHandshake (the local check, before
	// authentication) or StageServerCheck (after authentication).
	Stage Stage
	// Seen says what was observed, in words an operator can act on.
	Seen string
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("pgsecure: refused connection to %s (%s): %s", e.Addr, e.Stage, e.Seen)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Transient reports whether the check could not complete because the
// connection failed underneath it (reset, closed, timed out, or the server
// shutting down: SQLSTATE classes 08 and 57) rather than because of anything
// it observed. Such a connection is refused all the same; a retry may
// succeed, e.g. while the server restarts.
func (e *Error) Transient() bool {
	if e.Err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(e.Err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57")
	}
	var op *net.OpError
	if errors.As(e.Err, &op) && op.Op == "remote error" {
		return false // a TLS alert from the peer: an observation, not a network failure
	}
	return errors.Is(e.Err, io.EOF) || errors.Is(e.Err, io.ErrUnexpectedEOF) || errors.Is(e.Err, net.ErrClosed) ||
		errors.Is(e.Err, syscall.ECONNRESET) || errors.Is(e.Err, syscall.EPIPE) || errors.Is(e.Err, os.ErrDeadlineExceeded) ||
		errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded)
}

// Unwrap returns pgsecure.ErrNotEncrypted and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{shared.ErrNotEncrypted}
	}
	return []error{shared.ErrNotEncrypted, e.Err}
}
