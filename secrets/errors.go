package secrets

import (
	"context"
	"errors"
	"strings"
)

// Error is the error every source of pgsecure returns (env, file, vault,
// awssm, rdsiam, Cache, Static). Its message names the source and the
// operation and says what was wrong and how to fix it; it never holds a
// password, token or key.
//
// errors.Is reaches Kind (one of the sentinels above) and errors.As reaches
// Err (the os, context or backend SDK error).
type Error struct {
	// Kind is ErrNotFound, ErrAccessDenied, ErrInvalid, ErrExpired or
	// ErrUnavailable (transient: retrying may help); nil when the caller's
	// context ended first.
	Kind error
	// Source is the source's name, its redacted URI (see Namer).
	Source string
	// Op is what was attempted: "read", "parse", "login", "renew",
	// "revoke", "open", "refresh".
	Op string
	// Hint says what was wrong and how to fix it.
	Hint string
	// Err is the underlying error; may be nil. Backends keep texts that
	// could quote a secret out of it (see Quiet).
	Err error
}

// Error implements error: "pgsecure: <source>: <op>: <hint>: <cause>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pgsecure: ")
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	hint := e.Hint
	if hint == "" && e.Kind != nil {
		hint = strings.TrimPrefix(e.Kind.Error(), "pgsecure/secrets: ")
	}
	b.WriteString(hint)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As reach Kind and Err.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	for _, err := range []error{e.Kind, e.Err} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Temporary reports whether retrying may help (Kind is ErrUnavailable).
func (e *Error) Temporary() bool { return errors.Is(e.Kind, ErrUnavailable) }

// Named returns err with source as its Source when err is an *Error that
// names none (an error made below the source, such as a shared Vault login);
// err itself is not modified. Other errors are returned unchanged.
func Named(err error, source string) error {
	var e *Error
	if !errors.As(err, &e) || e.Source != "" || err != error(e) {
		return err
	}
	c := *e
	c.Source = source
	return &c
}

// Quiet keeps err reachable with errors.Is and errors.As while printing text
// instead of err's message: for SDK errors that may quote response bodies.
func Quiet(err error, text string) error { return quiet{err: err, text: text} }

type quiet struct {
	err  error
	text string
}

func (q quiet) Error() string { return q.text }
func (q quiet) Unwrap() error { return q.err }

func newError(kind error, source, msg string, err error) error {
	return &Error{Kind: kind, Source: source, Hint: msg, Err: err}
}

// ctxError reports that the caller's context ended before the source
// answered; it wraps context.Cause(ctx) so errors.Is(err, context.Canceled)
// works.
func ctxError(source string, ctx context.Context) error {
	return &Error{Source: source, Hint: "gave up waiting for credentials", Err: context.Cause(ctx)}
}
