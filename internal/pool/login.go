package pool

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pgsecure/pgsecure/internal/connect"
)

// LoginLogInterval is how often a failed login with the same cause (host,
// user, SQLSTATE, credential source) is logged: the first failure is logged
// at once, later ones within the interval are counted and the count is
// logged with the first failure after it.
const LoginLogInterval = time.Minute

// LoginFailed is the pipeline telling of a login the server rejected:
// one event, and a log line per cause per LoginLogInterval.
func (s *State) LoginFailed(ctx context.Context, f connect.LoginFailure) {
	ev := LoginFailure{Time: time.Now(), Host: f.Host, User: f.User, SQLState: f.Server.Code, Err: f.Err}
	if s.creds != nil {
		ev.Source = s.creds.name
	}
	s.loginFailed(ctx, ev, f.Server.Message)
}

// loginFailed logs (unless Build is about to return the error, or the same
// cause was logged within LoginLogInterval) and reports one failed login.
func (s *State) loginFailed(ctx context.Context, ev LoginFailure, message string) {
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
	s.events.LoginFailed(ctx, ev)
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
func (l *loginLog) due(ev LoginFailure, now time.Time) (int, bool) {
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
