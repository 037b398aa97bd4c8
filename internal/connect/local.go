package connect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pgsecure/pgsecure/internal/shared"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/verify"
)

// alpnPostgres is the ALPN protocol PostgreSQL 17+ selects for direct TLS.
const alpnPostgres = "postgresql"

type afterNetConnectFunc = func(context.Context, *pgconn.Config, net.Conn) (net.Conn, error)

// localStage runs in AfterNetConnect, after pgx's TLS upgrade and before any
// byte of the startup message: it completes the handshake and verifies it
// for the host of this attempt, then prepares the authentication watch and
// runs next (the caller's hook, if any).
type localStage struct {
	policy *Policy
	next   afterNetConnectFunc
}

func (s *localStage) afterNetConnect(ctx context.Context, cfg *pgconn.Config, nc net.Conn) (net.Conn, error) {
	a := attemptOf(nc)
	if err := s.verify(ctx, nc, a); err != nil {
		return nc, err // pgx requires a non-nil connection alongside the error
	}
	aw := newAuthWatch(s.policy, cfg, a)
	aw.ctx = context.WithoutCancel(ctx) // the connect's values (a tracer's span) for its events
	a.setWatch(aw)
	out, err := nc, error(nil)
	if s.next != nil {
		if out, err = s.next(within(ctx), cfg, nc); out == nil {
			out = nc
		}
	}
	if attemptOf(out) != a {
		out = &attemptConn{Conn: out, attempt: a} // the caller's wrapper hid the attempt
	}
	return out, err
}

// verify is the local check of the completed handshake, for the host the
// dial stage opened this attempt for.
func (s *localStage) verify(ctx context.Context, nc net.Conn, a *attempt) error {
	host, addr := "", remoteAddr(nc)
	if a != nil {
		host = a.host
	}
	fail := func(kind RefusalKind, err error) error {
		s.policy.Observer.Refused(ctx, Refusal{Kind: kind, Host: host, Addr: addr, Stage: verify.StageTLSHandshake, Err: err})
		return err
	}
	tc := tlsConnOf(nc)
	if tc == nil {
		return fail(RefusedPlaintext, &verify.Error{Addr: addr, Stage: verify.StageTLSHandshake,
			Seen: fmt.Sprintf("the connection is a plaintext %T, not TLS; the TLS configuration was removed", nc)})
	}
	if err := tc.HandshakeContext(context.WithValue(ctx, handshakeKey{}, a)); err != nil {
		if errors.Is(err, shared.ErrNotEncrypted) {
			return fail(RefusedCertificate, err) // pgsecure's VerifyConnection refused it and said why
		}
		if a != nil {
			if te := a.timeoutErr(err); te != err {
				return te // a timeout, named by host and stage; not a refusal
			}
		}
		return fail(RefusedTLS, &verify.Error{Addr: addr, Stage: verify.StageTLSHandshake, Seen: "TLS handshake failed", Err: err})
	}
	st := tc.ConnectionState()
	switch {
	case st.Version < s.policy.MinVersion:
		return fail(RefusedTLS, &verify.Error{Addr: addr, Stage: verify.StageTLSHandshake,
			Seen: fmt.Sprintf("negotiated %s, below the minimum %s", verify.VersionName(st.Version), verify.VersionName(s.policy.MinVersion))})
	case cipherProblem(st) != "":
		return fail(RefusedTLS, &verify.Error{Addr: addr, Stage: verify.StageTLSHandshake, Seen: cipherProblem(st)})
	case s.policy.Direct && st.NegotiatedProtocol != alpnPostgres:
		return fail(RefusedTLS, &verify.Error{Addr: addr, Stage: verify.StageTLSHandshake,
			Seen: fmt.Sprintf("direct TLS negotiation requires the server to select ALPN %q but it selected %q; the peer is not a PostgreSQL 17+ server speaking direct TLS", alpnPostgres, st.NegotiatedProtocol)})
	case a == nil:
		// Only the dial stage's connection carries an attempt: the
		// DialFunc it wrapped was replaced afterwards, and the host the
		// certificate must name is unknown.
		return s.policy.refuseNotInstalled(ctx, "", &NotInstalledError{Hook: "DialFunc", Addr: addr, Replaced: true})
	}
	if err := s.policy.TLS.VerifyPeer(host, st.PeerCertificates); err != nil {
		return fail(RefusedCertificate, err)
	}
	a.markVerified(tc)
	return nil
}

func (a *attempt) isVerified() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.verified
}

func (a *attempt) markVerified(tc *tls.Conn) {
	a.mu.Lock()
	a.verified, a.tlsConn, a.handshakeDone = true, tc, time.Since(a.started)
	a.stage = verify.StageAuth
	a.mu.Unlock()
}

func (a *attempt) watchFor() *authWatch {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.watch
}

func (a *attempt) setWatch(w *authWatch) {
	a.mu.Lock()
	a.watch = w
	a.mu.Unlock()
}

func remoteAddr(nc net.Conn) string {
	if nc == nil || nc.RemoteAddr() == nil {
		return "unknown address"
	}
	return nc.RemoteAddr().String()
}
