package secrets

import (
	"context"
	"strings"
)

// sourceError is the error the sources in this package return. Its message
// names the source and says what to fix; it never holds a secret value.
// errors.Is reaches kind (a sentinel) and errors.As reaches err (the
// underlying os, context or backend error).
type sourceError struct {
	kind   error  // ErrNotFound, ErrInvalid, ...; nil for a context error
	source string // the source's name; may be empty
	msg    string // what was wrong and how to fix it
	err    error  // the underlying error; may be nil
}

func (e *sourceError) Error() string {
	var b strings.Builder
	b.WriteString("pgsecure/secrets: ")
	if e.source != "" {
		b.WriteString(e.source)
		b.WriteString(": ")
	}
	b.WriteString(e.msg)
	if e.err != nil {
		b.WriteString(": ")
		b.WriteString(e.err.Error())
	}
	return b.String()
}

func (e *sourceError) Unwrap() []error {
	errs := make([]error, 0, 2)
	for _, err := range []error{e.kind, e.err} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func newError(kind error, source, msg string, err error) error {
	return &sourceError{kind: kind, source: source, msg: msg, err: err}
}

// ctxError reports that the caller's context ended before the source
// answered; it wraps ctx.Err() so errors.Is(err, context.Canceled) works.
func ctxError(source string, ctx context.Context) error {
	return newError(nil, source, "gave up waiting for credentials", context.Cause(ctx))
}
