package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

type chain struct {
	named
	srcs []Source
	last atomic.Int64 // index of the source that last returned credentials
}

// Chain returns a Source that asks srcs in order and returns the first
// credentials it gets.
//
// Only an error wrapping ErrNotFound moves on to the next source. Any other
// error (ErrInvalid, ErrUnavailable, a cancelled context, ...) stops the
// chain and is returned: a primary source that is misconfigured or down must
// not silently hand over to a fallback. When every source reports
// ErrNotFound, the error wraps ErrNotFound and each source's error and lists
// each source's name and failure.
//
// Invalidate goes to the source that last returned credentials; Close goes
// to every source that is a Closer. Chain panics on a nil source.
func Chain(srcs ...Source) Source {
	names := make([]string, len(srcs))
	for i, s := range srcs {
		if s == nil {
			panic(fmt.Sprintf("pgsecure/secrets: Chain: source %d is nil", i))
		}
		names[i] = NameOf(s)
	}
	return &chain{named: named{"chain(" + strings.Join(names, ", ") + ")"}, srcs: srcs}
}

// Credentials implements Source.
func (c *chain) Credentials(ctx context.Context) (Credentials, error) {
	var failures []string
	var errs []error
	for i, s := range c.srcs {
		creds, err := s.Credentials(ctx)
		if err == nil {
			c.last.Store(int64(i))
			return creds, nil
		}
		failures = append(failures, describe(s, err))
		errs = append(errs, err)
		if !errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			msg := fmt.Sprintf("source %d of %d failed, so later sources were not tried (only \"not found\" falls through): %s",
				i+1, len(c.srcs), strings.Join(failures, "; "))
			return Credentials{}, c.fail(msg, err)
		}
	}
	if len(c.srcs) == 0 {
		return Credentials{}, newError(ErrNotFound, c.name, "the chain has no sources", nil)
	}
	msg := "no source has credentials: " + strings.Join(failures, "; ")
	return Credentials{}, c.fail(msg, append(errs, ErrNotFound)...)
}

func (c *chain) fail(msg string, errs ...error) error {
	return &chainError{msg: "pgsecure: " + c.name + ": " + msg, errs: errs}
}

// describe names the source in front of its error unless the error already does.
func describe(s Source, err error) string {
	name, text := NameOf(s), err.Error()
	if strings.Contains(text, name) {
		return "[" + text + "]"
	}
	return "[" + name + ": " + text + "]"
}

// chainError carries a message listing every failure but unwraps only to
// the errors that decided the outcome.
type chainError struct {
	msg  string
	errs []error
}

func (e *chainError) Error() string   { return e.msg }
func (e *chainError) Unwrap() []error { return e.errs }

// Invalidate implements Invalidator: it forwards to the source that last
// returned credentials, if that source is an Invalidator.
func (c *chain) Invalidate(rejected Credentials) {
	if len(c.srcs) == 0 {
		return
	}
	if inv, ok := c.srcs[c.last.Load()].(Invalidator); ok {
		inv.Invalidate(rejected)
	}
}

// Close implements Closer: it closes every source that is a Closer and
// returns their errors joined.
func (c *chain) Close(ctx context.Context) error {
	var errs []error
	for _, s := range c.srcs {
		if cl, ok := s.(Closer); ok {
			errs = append(errs, cl.Close(ctx))
		}
	}
	return errors.Join(errs...)
}
