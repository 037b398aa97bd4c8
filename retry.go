package pgsecure

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/secrets"
)

// errRetryFresh replaces the server's SQLSTATE 28P01 when pgsecure retries
// the connection with fresh credentials: pgx stops at an authentication
// error, and moves on to the next address at any other.
var errRetryFresh = errors.New("pgsecure: the server rejected the credentials (SQLSTATE 28P01); retrying once with fresh ones from the credential source")

// errRetryNotArmed is what a retry address answers when no retry is due
// (every earlier attempt failed for another reason).
var errRetryNotArmed = errors.New("pgsecure: retry address not used: the credentials were not rejected")

// retryState lets one new connection retry once, with fresh credentials,
// after the server rejected its password (a rotated or revoked secret). The
// connection's host list is doubled: the copies may only be dialled once a
// retry is armed. Addresses are counted through LookupFunc (pgx resolves
// every host, in order, before dialling) and dials through DialFunc, so the
// copies are recognised by position.
type retryState struct {
	mu           sync.Mutex
	primaryHosts int
	lookups      int
	primaryAddrs int
	dials        int
	used, armed  bool
}

// addRetry appends a copy of every host of cc and wraps its resolver and
// dialler (inside pgsecure's guard: around the caller's dialler if one was
// set on the config, else pgx's).
func (e *enforcer) addRetry(cc *pgx.ConnConfig) {
	base := cc.DialFunc
	if funcID(base) == guardID {
		base = e.baseDial
	}
	entries := hosts(cc)
	rs := &retryState{primaryHosts: len(entries)}
	for _, h := range entries {
		cc.Fallbacks = append(cc.Fallbacks, &pgconn.FallbackConfig{Host: h.host, Port: h.port, TLSConfig: e.policy.configFor(h.host)})
	}
	lookup := cc.LookupFunc
	cc.LookupFunc = func(ctx context.Context, host string) ([]string, error) {
		addrs, err := lookup(ctx, host)
		rs.mu.Lock()
		rs.lookups++
		if rs.lookups <= rs.primaryHosts && err == nil {
			rs.primaryAddrs += len(addrs)
		}
		rs.mu.Unlock()
		return addrs, err
	}
	cc.DialFunc = guardDial(func(ctx context.Context, network, addr string) (net.Conn, error) {
		rs.mu.Lock()
		rs.dials++
		skip := rs.dials > rs.primaryAddrs && !rs.armed
		rs.mu.Unlock()
		if skip {
			return nil, errRetryNotArmed
		}
		nc, err := base(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &retryConn{Conn: nc, rs: rs}, nil
	}, e.policy.direct)
}

// retryConn carries the connection's retry state to AfterNetConnect.
type retryConn struct {
	net.Conn
	rs *retryState
}

// NetConn returns the wrapped connection.
func (c *retryConn) NetConn() net.Conn { return c.Conn }

// retryStateOf finds the retry state under a connection pgsecure dialled.
func retryStateOf(nc net.Conn) *retryState {
	if g := guardedUnder(nc); g != nil {
		if rc, ok := g.Conn.(*retryConn); ok {
			return rc.rs
		}
	}
	return nil
}

// retryWithFresh runs when the server rejected cfg's credentials: it fetches
// fresh ones (the rejected ones were invalidated already) and, if they
// differ, puts them on cfg — the config pgx uses for the remaining attempts
// — and arms the retry. It reports whether the rejection should become a
// retry.
func (h *credHook) retryWithFresh(ctx context.Context, cfg *pgconn.Config, rs *retryState) bool {
	rs.mu.Lock()
	if rs.used {
		rs.mu.Unlock()
		return false
	}
	rs.used = true
	rs.mu.Unlock()
	fresh, err := h.fetch(ctx)
	if err != nil || (fresh.User == cfg.User && fresh.Password.Equal(secrets.NewSecret(cfg.Password))) {
		return false
	}
	cfg.User, cfg.Password = fresh.User, fresh.Password.Reveal()
	rs.mu.Lock()
	rs.armed = true
	rs.mu.Unlock()
	return true
}
