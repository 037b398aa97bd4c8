package pgsecure

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"runtime"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/verify"
)

// enforcer installs pgsecure's checks on a ConnConfig and re-checks them
// before every new connection.
type enforcer struct {
	policy *tlsPolicy
	log    func() *slog.Logger
}

// install puts pgsecure's TLS configuration on every host and wraps the
// dial, after-net-connect and validate hooks (keeping whatever pgx or the
// caller had there, chained after pgsecure's check).
func (e *enforcer) install(cc *pgx.ConnConfig) {
	for _, h := range hosts(cc) {
		*h.tls = e.policy.configFor(h.host)
	}
	cc.DialFunc = guardDial(cc.DialFunc)
	cc.AfterNetConnect = e.afterNetConnect(cc.AfterNetConnect)
	cc.ValidateConnect = e.validateConnect(cc.ValidateConnect)
}

// recheck runs in BeforeConnect on the per-connection copy of the config. It
// refuses a configuration whose TLS protection was removed or replaced since
// Config returned it, re-binds each host's TLS configuration to the host
// (hooks may change hosts), and re-wraps hooks that were replaced so that the
// replacement runs after pgsecure's check.
func (e *enforcer) recheck(cc *pgx.ConnConfig) error {
	for _, h := range hosts(cc) {
		if isUnixSocket(h.host) {
			return configErr("host", "BeforeConnect", fmt.Sprintf("%q is a unix-socket directory, which cannot carry TLS", h.host),
				"do not point hosts at unix sockets in hooks")
		}
		tc := *h.tls
		switch {
		case tc == nil:
			return configErr("TLSConfig", "BeforeConnect", fmt.Sprintf("the TLS configuration for host %q was removed after pgsecure built it", h.host),
				"do not modify ConnConfig.TLSConfig or Fallbacks[i].TLSConfig of a pgsecure configuration")
		case funcID(tc.VerifyConnection) != verifierID:
			return configErr("TLSConfig", "BeforeConnect", fmt.Sprintf("the TLS configuration for host %q was replaced after pgsecure built it", h.host),
				"do not modify ConnConfig.TLSConfig or Fallbacks[i].TLSConfig of a pgsecure configuration")
		case tc.MinVersion < e.policy.minVersion || (e.policy.maxVersion != 0 && tc.MaxVersion != e.policy.maxVersion):
			return configErr("TLSConfig", "BeforeConnect", fmt.Sprintf("the TLS versions for host %q were changed after pgsecure built the configuration", h.host),
				"use MinTLSVersion or ssl_min_protocol_version instead")
		}
		*h.tls = e.policy.configFor(h.host)
	}
	if cc.SSLNegotiation != "" && cc.SSLNegotiation != "postgres" {
		return configErr("SSLNegotiation", "BeforeConnect", fmt.Sprintf("%q was set after pgsecure built the configuration", cc.SSLNegotiation), "leave it unset")
	}
	if funcID(cc.DialFunc) != guardID {
		cc.DialFunc = guardDial(cc.DialFunc)
	}
	if funcID(cc.AfterNetConnect) != afterNetConnectID {
		cc.AfterNetConnect = e.afterNetConnect(cc.AfterNetConnect)
	}
	if funcID(cc.ValidateConnect) != validateID {
		cc.ValidateConnect = e.validateConnect(cc.ValidateConnect)
	}
	return nil
}

// afterNetConnect runs before any credential is sent: it completes the TLS
// handshake and checks the local TLS state (verify.Local), then calls next.
// It always returns a non-nil net.Conn alongside an error (pgx requires it).
func (e *enforcer) afterNetConnect(next afterNetConnectFunc) afterNetConnectFunc {
	return (&netHook{e: e, next: next}).afterNetConnect
}

type afterNetConnectFunc = func(context.Context, *pgconn.Config, net.Conn) (net.Conn, error)

type netHook struct {
	e    *enforcer
	next afterNetConnectFunc
}

func (h *netHook) afterNetConnect(ctx context.Context, cfg *pgconn.Config, nc net.Conn) (net.Conn, error) {
	e := h.e
	tc, err := verify.Local(ctx, nc, verify.LocalPolicy{MinVersion: e.policy.minVersion, VerifyChain: e.policy.verifyChain})
	if err != nil {
		e.refused(ctx, err)
		return nc, err
	}
	if h.next == nil {
		return tc, nil
	}
	out, err := h.next(ctx, cfg, tc)
	if out == nil {
		out = tc
	}
	return out, err
}

// validateConnect runs after authentication: the server must confirm the
// session is encrypted (verify.Server). Then next (pgx's
// target_session_attrs check, or the caller's) runs.
func (e *enforcer) validateConnect(next pgconn.ValidateConnectFunc) pgconn.ValidateConnectFunc {
	return (&validateHook{e: e, next: next}).validateConnect
}

type validateHook struct {
	e    *enforcer
	next pgconn.ValidateConnectFunc
}

func (h *validateHook) validateConnect(ctx context.Context, pgConn *pgconn.PgConn) error {
	if _, err := verify.Server(ctx, pgConn); err != nil {
		h.e.refused(ctx, err)
		return err
	}
	if h.next != nil {
		return h.next(ctx, pgConn)
	}
	return nil
}

func (e *enforcer) refused(ctx context.Context, err error) {
	e.log().LogAttrs(ctx, slog.LevelWarn, "pgsecure: connection refused", slog.String("error", err.Error()))
}

// funcID names the code behind a func value. pgsecure installs its hooks as
// method values of its own unexported types, whose names identify them
// whatever the receiver, so it can recognise its own hooks.
func funcID(f any) string {
	v := reflect.ValueOf(f)
	if !v.IsValid() || v.IsNil() {
		return ""
	}
	fn := runtime.FuncForPC(v.Pointer())
	if fn == nil {
		return ""
	}
	return fn.Name()
}

var (
	verifierID        = funcID((&tlsPolicy{}).verifyConnection(""))
	guardID           = funcID(guardDial(nil))
	afterNetConnectID = funcID((&enforcer{}).afterNetConnect(nil))
	validateID        = funcID((&enforcer{}).validateConnect(nil))
)
