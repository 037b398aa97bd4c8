package pgsecure

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/internal/connect"
)

// LoginLogInterval is how often a failed login with the same cause (host,
// user, SQLSTATE, credential source) is logged: the first failure is logged
// at once, later ones within the interval are counted and the count is
// logged with the first failure after it.
const LoginLogInterval = time.Minute

// loginWatch is the pgx ConnectTracer pgsecure puts on each connect (after
// the caller's tracer, which still receives every call): when the connect
// ends with the server rejecting the login, that is its final outcome (a
// rejection retried with fresh credentials that then succeeded ends
// without an error).
type loginWatch struct {
	s    *poolState
	cc   *pgx.ConnConfig
	mu   sync.Mutex
	host string // the host of the last attempt that reached the server
}

// watchLogins installs a loginWatch on the per-connection cc.
func (s *poolState) watchLogins(cc *pgx.ConnConfig) {
	w := &loginWatch{s: s, cc: cc}
	if cc.Tracer == nil {
		cc.Tracer = w
	} else {
		cc.Tracer = multitracer.New(w, cc.Tracer) // first: its end is reported while the caller's span is open
	}
	next := cc.AfterNetConnect
	cc.AfterNetConnect = func(ctx context.Context, cfg *pgconn.Config, nc net.Conn) (net.Conn, error) {
		if host, ok := connect.HostOf(nc); ok {
			w.mu.Lock()
			w.host = host
			w.mu.Unlock()
		}
		return next(ctx, cfg, nc)
	}
}

func (w *loginWatch) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (w *loginWatch) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (w *loginWatch) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return ctx
}

func (w *loginWatch) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	pe := connect.LoginRejection(data.Err)
	if pe == nil {
		return
	}
	w.mu.Lock()
	host := w.host
	w.mu.Unlock()
	if host == "" {
		host = w.cc.Host
	}
	ev := LoginFailed{Time: time.Now(), Host: host, User: w.cc.User, SQLState: pe.Code, Err: data.Err}
	if w.s.creds != nil {
		ev.Source = w.s.creds.name
	}
	w.s.loginFailed(ctx, ev, pe.Message)
}

// loginFailed logs (unless Build is about to return the error, or the same
// cause was logged within LoginLogInterval) and reports one failed login.
func (s *poolState) loginFailed(ctx context.Context, ev LoginFailed, message string) {
	if !s.startup.Load() {
		if n, ok := s.logins.due(ev, ev.Time); ok {
			source := ev.Source
			if source == "" {
				source = "connection string"
			}
			s.log().LogAttrs(ctx, slog.LevelWarn, "pgsecure: login failed", slog.String("host", ev.Host),
				slog.String("user", ev.User), slog.String("sqlstate", ev.SQLState), slog.String("source", source),
				slog.Int("count", n), slog.String("error", strings.TrimSpace(message)),
				slog.Duration("interval", LoginLogInterval))
		}
	}
	s.events.emit(ctx, ev)
}

// loginLog limits failed-login lines to one per cause per LoginLogInterval.
type loginLog struct {
	mu    sync.Mutex
	cause map[string]*loginCause
}

type loginCause struct {
	logged time.Time // when the cause was last logged
	count  int       // failures since then, not yet logged
}

// due counts one failure and reports whether to log it now, with the
// number of failures the line stands for (this one and those counted
// since the cause was last logged).
func (l *loginLog) due(ev LoginFailed, now time.Time) (int, bool) {
	key := strings.Join([]string{ev.Host, ev.User, ev.SQLState, ev.Source}, "\x00")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cause == nil {
		l.cause = map[string]*loginCause{}
	}
	c := l.cause[key]
	if c == nil {
		c = &loginCause{}
		l.cause[key] = c
	}
	c.count++
	if !c.logged.IsZero() && now.Sub(c.logged) < LoginLogInterval {
		return 0, false
	}
	n := c.count
	c.logged, c.count = now, 0
	return n, true
}
