package pgsecure

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgsecure/pgsecure/verify"
)

// enforcer installs pgsecure's checks on a ConnConfig and re-checks them
// before every new connection. One enforcer serves one pool configuration.
type enforcer struct {
	policy     *tlsPolicy
	auth       authPolicy
	expiryWarn time.Duration // warn when a certificate expires sooner than this
	log        func() *slog.Logger
	events     *eventSink
	creds      *credHook       // when credentials come from a source
	baseDial   pgconn.DialFunc // the dialler inside pgsecure's guard

	warned sync.Map // certificate serial -> struct{}: expiry warnings already given
}

// install puts pgsecure's TLS configuration on every host and wraps the
// dial, after-net-connect and validate hooks (keeping whatever pgx or the
// caller had there, chained after pgsecure's check).
func (e *enforcer) install(cc *pgx.ConnConfig) {
	for _, h := range hosts(cc) {
		*h.tls = e.policy.configFor(h.host)
	}
	cc.SSLNegotiation = e.negotiation()
	cc.RequireAuth = e.auth.String()
	e.baseDial = cc.DialFunc
	e.wrapHooks(cc)
}

// negotiation is the pgconn SSLNegotiation value the policy requires.
func (e *enforcer) negotiation() string {
	if e.policy.direct {
		return "direct"
	}
	return ""
}

// wrapHooks wraps each connect hook that is not pgsecure's (pgx's own, or
// one a caller set) so that it runs after pgsecure's check.
func (e *enforcer) wrapHooks(cc *pgx.ConnConfig) {
	if funcID(cc.DialFunc) != guardID {
		cc.DialFunc = guardDial(cc.DialFunc, e.policy.direct)
	}
	if funcID(cc.AfterNetConnect) != afterNetConnectID {
		cc.AfterNetConnect = e.afterNetConnect(cc.AfterNetConnect)
	}
	if funcID(cc.ValidateConnect) != validateID {
		cc.ValidateConnect = e.validateConnect(cc.ValidateConnect)
	}
	if funcID(cc.BuildFrontend) != frontendID {
		cc.BuildFrontend = e.buildFrontend(cc.BuildFrontend)
	}
}

// recheck runs in BeforeConnect on the per-connection copy of the config. It
// refuses a configuration whose TLS protection was removed or replaced since
// Config returned it, re-binds each host's TLS configuration to the host
// (hooks may change hosts), and re-wraps hooks that were replaced so that the
// replacement runs after pgsecure's check.
func (e *enforcer) recheck(cc *pgx.ConnConfig) error {
	const fix = "do not modify ConnConfig.TLSConfig or Fallbacks[i].TLSConfig of a pgsecure configuration; use the Builder's options"
	for _, h := range hosts(cc) {
		if isUnixSocket(h.host) {
			return unixSocketError(h.host, "BeforeConnect", "do not point hosts at unix sockets in hooks")
		}
		tc := *h.tls
		switch {
		case tc == nil:
			return configErr("TLSConfig", "BeforeConnect", fmt.Sprintf("the TLS configuration for host %q was removed after pgsecure built it", h.host), fix)
		case funcID(tc.VerifyConnection) != verifierID:
			return configErr("TLSConfig", "BeforeConnect", fmt.Sprintf("the TLS configuration for host %q was replaced after pgsecure built it", h.host), fix)
		case tc.MinVersion < e.policy.minVersion || tc.MaxVersion != e.policy.maxVersion:
			return configErr("TLSConfig", "BeforeConnect", fmt.Sprintf("the TLS versions for host %q were changed after pgsecure built the configuration", h.host),
				"use MinTLSVersion or ssl_min_protocol_version instead")
		}
		*h.tls = e.policy.configFor(h.host)
	}
	if cc.SSLNegotiation != e.negotiation() {
		return configErr("SSLNegotiation", "BeforeConnect", fmt.Sprintf("%q was set after pgsecure built the configuration", cc.SSLNegotiation), "use sslnegotiation in the connection string")
	}
	if cc.RequireAuth != e.auth.String() {
		return configErr("RequireAuth", "BeforeConnect", fmt.Sprintf("%q was set after pgsecure built the configuration", cc.RequireAuth), "use require_auth in the connection string")
	}
	e.wrapHooks(cc)
	return nil
}

func (e *enforcer) buildFrontend(next pgconn.BuildFrontendFunc) pgconn.BuildFrontendFunc {
	if next == nil {
		next = func(r io.Reader, w io.Writer) *pgproto3.Frontend { return pgproto3.NewFrontend(r, w) }
	}
	return (&frontendHook{e: e, next: next}).buildFrontend
}

type frontendHook struct {
	e    *enforcer
	next pgconn.BuildFrontendFunc
}

// buildFrontend puts the authentication watch between pgx's protocol
// reader/writer and the connection. w is the connection AfterNetConnect
// returned; when a caller's hook replaced it, a watch without credential
// feedback is used, so the policy holds either way.
func (h *frontendHook) buildFrontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	var aw *authWatch
	if g := guardedUnder(w); g != nil {
		aw = g.watch.Load()
	}
	if aw == nil {
		aw = &authWatch{policy: h.e.auth}
	}
	aw.r, aw.w = r, w
	return h.next(aw, aw)
}

type afterNetConnectFunc = func(context.Context, *pgconn.Config, net.Conn) (net.Conn, error)

func (e *enforcer) afterNetConnect(next afterNetConnectFunc) afterNetConnectFunc {
	return (&netHook{e: e, next: next}).afterNetConnect
}

type netHook struct {
	e    *enforcer
	next afterNetConnectFunc
}

// afterNetConnect runs before any credential is sent: it completes the TLS
// handshake and checks the local TLS state (verify.Local), then wraps the
// connection in the authentication watch and calls next. It always returns a
// non-nil net.Conn alongside an error (pgx requires it).
func (h *netHook) afterNetConnect(ctx context.Context, cfg *pgconn.Config, nc net.Conn) (net.Conn, error) {
	e := h.e
	lp := verify.LocalPolicy{MinVersion: e.policy.minVersion, VerifyChain: e.policy.verifyChain}
	if e.policy.direct {
		lp.RequireALPN = alpnPostgres
	}
	tc, err := verify.Local(ctx, nc, lp)
	if err != nil {
		e.refused(ctx, err)
		return nc, err
	}
	user, password := cfg.User, cfg.Password
	w := &authWatch{policy: e.auth}
	if c := e.creds; c != nil {
		rs := retryStateOf(tc.NetConn())
		w.onReject = func() bool {
			c.rejected(user, password)
			return rs != nil && c.retryWithFresh(ctx, cfg, rs)
		}
	}
	var out net.Conn = tc
	if h.next != nil {
		if out, err = h.next(ctx, cfg, tc); out == nil {
			out = tc
		}
	}
	if g := guardedUnder(tc); g != nil {
		g.watch.Store(w)
	}
	return out, err
}

func (e *enforcer) validateConnect(next pgconn.ValidateConnectFunc) pgconn.ValidateConnectFunc {
	return (&validateHook{e: e, next: next}).validateConnect
}

type validateHook struct {
	e    *enforcer
	next pgconn.ValidateConnectFunc
}

// validateConnect runs after authentication: the server must confirm the
// session is encrypted (verify.Server). Then next (pgx's
// target_session_attrs check, or the caller's) runs.
func (h *validateHook) validateConnect(ctx context.Context, pgConn *pgconn.PgConn) error {
	e := h.e
	r, err := verify.Server(ctx, pgConn)
	if err != nil {
		e.refused(ctx, err)
		return err
	}
	if g := guardedUnder(pgConn.Conn()); g != nil && g.watch.Load() != nil {
		r.AuthMethod, r.SASLMechanism = g.watch.Load().observation()
	}
	if cert := e.policy.currentClientLeaf(); cert != nil {
		d := verify.Describe(cert)
		r.ClientCertificate = &d
	}
	verify.Update(pgConn, func(attached *verify.Report) { *attached = r })
	e.checkExpiry(ctx, r)
	e.log().LogAttrs(ctx, slog.LevelDebug, "pgsecure: connection verified", slog.Any("report", r))
	e.events.emit(Event{Kind: EventConnectionVerified, Report: &r})
	if h.next != nil {
		return h.next(ctx, pgConn)
	}
	return nil
}

// checkExpiry warns once per certificate when the server's (or client's)
// certificate expires within expiryWarn.
func (e *enforcer) checkExpiry(ctx context.Context, r verify.Report) {
	if e.expiryWarn <= 0 {
		return
	}
	certs := []verify.Certificate{r.Leaf()}
	if r.ClientCertificate != nil {
		certs = append(certs, *r.ClientCertificate)
	}
	now := time.Now()
	for i, c := range certs {
		if c.NotAfter.IsZero() || c.NotAfter.Sub(now) > e.expiryWarn {
			continue
		}
		if _, dup := e.warned.LoadOrStore(c.Issuer+"/"+c.SerialNumber, struct{}{}); dup {
			continue
		}
		which := "server"
		if i > 0 {
			which = "client"
		}
		days := c.DaysUntilExpiry(now)
		e.log().LogAttrs(ctx, slog.LevelWarn, "pgsecure: certificate expires soon",
			slog.String("which", which), slog.String("subject", c.Subject), slog.Time("not_after", c.NotAfter), slog.Int("days_left", days))
		e.events.emit(Event{Kind: EventCertificateExpiring, Report: &r, Certificate: &c, DaysLeft: days})
	}
}

func (e *enforcer) refused(ctx context.Context, err error) {
	e.log().LogAttrs(ctx, slog.LevelWarn, "pgsecure: connection refused", slog.String("error", err.Error()))
	e.events.emit(Event{Kind: EventConnectionRefused, Err: err})
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
	guardID           = funcID(guardDial(nil, false))
	afterNetConnectID = funcID((&enforcer{}).afterNetConnect(nil))
	validateID        = funcID((&enforcer{}).validateConnect(nil))
	frontendID        = funcID((&enforcer{}).buildFrontend(nil))
)
