package connect

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/internal/refresh"
	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/verify"
)

// ErrCredentialsRejected is wrapped by *RejectedError.
var ErrCredentialsRejected = shared.ErrCredentialsRejected

// Login is a user name and password to log in with.
type Login struct{ User, Password string }

// A password rotation changes two places, the database and the secret, and
// either may change first. Until both agree the server rejects what the
// source holds (SQLSTATE 28P01), and the source has nothing newer to offer.
// relogin bridges that window within the connect's own deadline
// (connect_timeout): with backoff (refresh.LoginBackoff) it re-reads the
// source (a newer secret is handed to pgx's retry at once) and logs in
// again, over a connection verified like any other, with the source's
// current credentials and with the previous ones (which the database still
// accepts when the secret changed first). The first login the server
// accepts decides the credentials of pgx's retry of this host.

// probeKey marks the context of a probe login: its own rejection is final.
type probeKey struct{}

// relogin runs after the server rejected the credentials of this connect
// and the source had nothing newer for one retry. It returns the
// credentials for that retry, or an error when the connect's deadline
// ended first (nil error and ok=false: nothing to add to the server's).
func (w *authWatch) relogin(code, msg string) (Login, bool, error) {
	ctx := w.attempt.ctx
	rejected := Login{w.cfg.User, w.cfg.Password}
	started := time.Now()
	logins := 1
	for round := 1; ; round++ {
		cands := w.policy.Credentials.Candidates(ctx, rejected.User, rejected.Password)
		if len(cands) > 0 && cands[0] != rejected {
			w.policy.Credentials.Retrying(cands[0].User, cands[0].Password)
			return cands[0], true, nil // the source has newer credentials: pgx's retry tries them
		}
		for i, c := range cands {
			if i == 0 && round == 1 && len(cands) > 1 {
				continue // just rejected: the earlier generation first
			}
			accepted, err := w.probe(ctx, c)
			logins++
			if accepted {
				w.policy.Credentials.Retrying(c.User, c.Password)
				return c, true, nil
			}
			if err != nil && ctx.Err() == nil && !isRejection(err) {
				return Login{}, false, nil // the host failed otherwise: its own error will tell
			}
		}
		t := time.NewTimer(refresh.LoginBackoff(round, refresh.Rand()))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Login{}, false, &RejectedError{Source: w.policy.Credentials.Name(), Logins: logins,
				For: time.Since(started), Server: &pgconn.PgError{Severity: "FATAL", Code: code, Message: msg}}
		}
	}
}

// probe logs in to this attempt's host with c over a fresh connection that
// passes the same TLS checks (the pipeline's stages are on the copied
// configuration), and closes it. It reports whether the server accepted c.
func (w *authWatch) probe(ctx context.Context, c Login) (bool, error) {
	pc := w.cfg.Copy()
	pc.User, pc.Password = c.User, c.Password
	pc.ConnectTimeout = 0 // ctx bounds it: the connect's deadline
	pc.ValidateConnect = nil
	pc.OnNotice, pc.OnNotification, pc.OnPgError = nil, nil, nil
	host, port := w.attempt.host, pc.Port
	if _, p, err := net.SplitHostPort(w.attempt.addr); err == nil {
		if n, err := strconv.ParseUint(p, 10, 16); err == nil {
			port = uint16(n)
		}
	}
	tlsConfig := w.policy.TLS.ConfigFor(host)
	for _, fb := range pc.Fallbacks {
		if fb.Host == host && fb.Port == port && fb.TLSConfig != nil {
			tlsConfig = fb.TLSConfig
		}
	}
	if pc.Host == host && pc.Port == port && pc.TLSConfig != nil {
		tlsConfig = pc.TLSConfig
	}
	if tlsConfig == nil {
		return false, errors.New("no TLS configuration for the host")
	}
	pc.Host, pc.Port, pc.TLSConfig, pc.Fallbacks = host, port, tlsConfig, nil
	conn, err := pgconn.ConnectConfig(context.WithValue(ctx, probeKey{}, true), pc)
	if err != nil {
		return false, err
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = conn.Close(closeCtx)
	return true, nil
}

// isRejection reports whether err is the server rejecting the login
// (SQLSTATE 28P01, or 28000 as proxies answer).
func isRejection(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}

// RejectedError is verify.CredentialsRejectedError.
type RejectedError = verify.CredentialsRejectedError
