package connect

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/verify"
)

// Arm prepares a configuration that pgx may copy for many connections (the
// one Builder.Config returns): each hook the pipeline wraps becomes a
// tripwire around what it was. A tripwire passes through only when the
// pipeline's stage for that hook runs around it, which it does once Install
// put the stages on the connection's own copy (the pool's BeforeConnect
// does). Otherwise — the pool's BeforeConnect was replaced — the connection
// is refused with ErrInsecureConfig before anything but the TLS request is
// sent. Replacing a tripwire (as a caller may, to customise) is fine while
// BeforeConnect installs the stages around the replacement; replacing
// BeforeConnect and every tripwire removes the checks, as documented on
// Builder.Config.
func Arm(cc *pgconn.Config, p *Policy) {
	dial := cc.DialFunc
	cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !inside(ctx) {
			return nil, p.notInstalled(ctx, "DialFunc", addr)
		}
		return dial(ctx, network, addr)
	}
	anc := cc.AfterNetConnect
	cc.AfterNetConnect = func(ctx context.Context, cfg *pgconn.Config, nc net.Conn) (net.Conn, error) {
		switch {
		case !inside(ctx):
			return nc, p.notInstalled(ctx, "AfterNetConnect", remoteAddr(nc))
		case anc == nil:
			return nc, nil
		}
		return anc(ctx, cfg, nc)
	}
	frontend := cc.BuildFrontend
	cc.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		switch w.(type) {
		case *authWatch, refusingWriter: // the frontend stage ran (and may have refused already)
		default:
			// BuildFrontend cannot return an error: the startup message,
			// its first write, fails instead, so nothing is sent.
			w = refusingWriter{p.notInstalled(context.Background(), "BuildFrontend", "")}
		}
		if frontend == nil {
			return pgproto3.NewFrontend(r, w)
		}
		return frontend(r, w)
	}
	validate := cc.ValidateConnect
	cc.ValidateConnect = func(ctx context.Context, pgConn *pgconn.PgConn) error {
		switch {
		case !inside(ctx):
			return p.notInstalled(ctx, "ValidateConnect", remoteAddr(pgConn.Conn()))
		case validate == nil:
			return nil
		}
		return validate(ctx, pgConn)
	}
}

// Install puts the pipeline's stages around the hooks of one connection's
// configuration (tripwires, a caller's hooks, pgx's defaults), so those run
// after pgsecure's checks, each stage once. It does not touch TLS
// configurations (the root package binds those per host).
func Install(cc *pgconn.Config, p *Policy) {
	l := &lookupStage{real: cc.LookupFunc}
	cc.LookupFunc = l.lookup
	cc.DialFunc = (&dialStage{policy: p, resolve: l.resolve, next: cc.DialFunc}).dial
	cc.AfterNetConnect = (&localStage{policy: p, next: cc.AfterNetConnect}).afterNetConnect
	cc.BuildFrontend = (&frontendStage{policy: p, next: cc.BuildFrontend}).buildFrontend
	cc.ValidateConnect = (&proofStage{policy: p, next: cc.ValidateConnect}).validate
}

// insideKey marks the context a stage hands to the hook it wraps.
type insideKey struct{}

func within(ctx context.Context) context.Context { return context.WithValue(ctx, insideKey{}, true) }
func inside(ctx context.Context) bool            { return ctx.Value(insideKey{}) != nil }

// NotInstalledError refuses a connection whose configuration came from
// Builder.Config but whose pipeline was never installed: the pool's
// BeforeConnect was replaced.
type NotInstalledError struct {
	Hook string // the hook that ran without pgsecure's stage around it
	Addr string // the address, when known
	// Replaced is set when the stages were installed but Hook was replaced
	// afterwards (by a BeforeConnect that runs after pgsecure's).
	Replaced bool
}

func (e *NotInstalledError) Error() string {
	return fmt.Sprintf("pgsecure: %s; fix: %s", e.Problem(), e.Fix())
}

// Problem says what happened, Fix what to do.
func (e *NotInstalledError) Problem() string {
	if e.Replaced {
		return fmt.Sprintf("%s was replaced on this connection after pgsecure installed its checks around it (by a BeforeConnect that runs after pgsecure's)", e.Hook)
	}
	return fmt.Sprintf("pgsecure's checks were not installed on this connection (its %s ran without them): the pool's BeforeConnect from Builder.Config was replaced", e.Hook)
}

func (e *NotInstalledError) Fix() string {
	if e.Replaced {
		return "set " + e.Hook + " with Builder.ConfigurePool (pgsecure installs its checks around it), not in a hook that runs after pgsecure's"
	}
	return "customise the pool with Builder.ConfigurePool, or call the BeforeConnect that Config returned from your own BeforeConnect"
}

func (e *NotInstalledError) Unwrap() error { return shared.ErrInsecureConfig }

func (p *Policy) notInstalled(ctx context.Context, hook, addr string) error {
	return p.refuseNotInstalled(ctx, "", &NotInstalledError{Hook: hook, Addr: addr})
}

func (p *Policy) refuseNotInstalled(ctx context.Context, host string, err *NotInstalledError) error {
	p.Observer.Refused(ctx, Refusal{Kind: RefusedConfiguration, Host: host, Addr: err.Addr, Stage: verify.StageConfig, Err: err})
	return err
}

// refusingWriter fails every write with err.
type refusingWriter struct{ err error }

func (w refusingWriter) Write([]byte) (int, error) { return 0, w.err }

// lookupStage is installed as LookupFunc. pgx calls it for every host
// before dialling: it returns the host name unresolved, so that the dial
// stage receives "host:port" and knows the name the certificate must
// match. The dial stage resolves the name through resolve, which reaches
// the LookupFunc the configuration had before.
type lookupStage struct {
	real pgconn.LookupFunc
}

type resolveKey struct{}

func (l *lookupStage) lookup(ctx context.Context, host string) ([]string, error) {
	if ctx.Value(resolveKey{}) != nil {
		return l.real(ctx, host)
	}
	return []string{host}, nil
}

func (l *lookupStage) resolve(ctx context.Context, host string) ([]string, error) {
	return l.real(context.WithValue(ctx, resolveKey{}, true), host)
}
