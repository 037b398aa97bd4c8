// Package verify asserts that a PostgreSQL connection is encrypted, from both
// ends, and describes it in a Report.
//
// Two checks run on every new physical connection made by a pgsecure pool:
//
//   - Local, right after the TCP connection is upgraded and before any
//     credential is sent: the connection is a *tls.Conn whose handshake has
//     completed, at or above the minimum TLS version, with a peer certificate
//     chain that passes the caller's re-check.
//   - Server, right after authentication: the server's pg_stat_ssl row for
//     this backend says ssl = true, and its TLS version agrees with the
//     client's.
//
// Either failure is an error wrapping ErrNotEncrypted. The server-side check
// describes only the last network hop: behind a pooler such as PgBouncer,
// pg_stat_ssl describes the pooler's connection to the server.
package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotEncrypted is wrapped by every error that refuses a connection because
// it is not (verifiably) encrypted. pgsecure.ErrNotEncrypted is the same value.
var ErrNotEncrypted = errors.New("pgsecure: connection is not encrypted")

// Error is a refused connection: where in the connection it was caught and
// what was seen. It wraps ErrNotEncrypted and, when there is one, the cause.
type Error struct {
	// Addr is the server address (ip:port).
	Addr string
	// Stage is "before authentication" (local check) or "after
	// authentication" (server check).
	Stage string
	// Seen says what was observed, in words an operator can act on.
	Seen string
	// Err is the underlying cause, if any.
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("pgsecure: refused connection to %s %s: %s", e.Addr, e.Stage, e.Seen)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Transient reports whether the check could not complete because the
// connection failed underneath it (reset, closed, timed out, or the server
// shutting down: SQLSTATE classes 08 and 57) rather than because of anything
// it observed. Such a connection is refused all the same; a retry may
// succeed, e.g. while the server restarts.
func (e *Error) Transient() bool {
	if e.Err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(e.Err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57")
	}
	var op *net.OpError
	if errors.As(e.Err, &op) && op.Op == "remote error" {
		return false // a TLS alert from the peer: an observation, not a network failure
	}
	return errors.Is(e.Err, io.EOF) || errors.Is(e.Err, io.ErrUnexpectedEOF) || errors.Is(e.Err, net.ErrClosed) ||
		errors.Is(e.Err, syscall.ECONNRESET) || errors.Is(e.Err, syscall.EPIPE) || errors.Is(e.Err, os.ErrDeadlineExceeded) ||
		errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded)
}

// Unwrap returns ErrNotEncrypted and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrNotEncrypted}
	}
	return []error{ErrNotEncrypted, e.Err}
}

const (
	stageLocal  = "before authentication"
	stageServer = "after authentication"
)

// LocalPolicy configures Local.
type LocalPolicy struct {
	// MinVersion is the lowest acceptable TLS version; zero means TLS 1.2.
	MinVersion uint16
	// VerifyChain, when set, re-checks the peer's certificate chain (leaf
	// first). pgsecure uses it to re-verify the chain against the pinned roots,
	// so a TLS configuration swapped after the pool was built cannot pass.
	VerifyChain func(chain []*x509.Certificate) error
	// RequireALPN, when set, is the application protocol the server must
	// have selected (direct TLS negotiation requires "postgresql").
	RequireALPN string
}

// Local completes the TLS handshake on nc if it has not completed yet and
// checks the result. It returns the *tls.Conn on success.
func Local(ctx context.Context, nc net.Conn, p LocalPolicy) (*tls.Conn, error) {
	addr := remoteAddr(nc)
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nil, &Error{Addr: addr, Stage: stageLocal,
			Seen: fmt.Sprintf("the connection is a plaintext %T, not TLS; the TLS configuration was removed", nc)}
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		if errors.Is(err, ErrNotEncrypted) {
			return nil, err // already says what was wrong (e.g. certificate refused)
		}
		return nil, &Error{Addr: addr, Stage: stageLocal, Seen: "TLS handshake failed", Err: err}
	}
	st := tc.ConnectionState()
	minVersion := p.MinVersion
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	switch {
	case !st.HandshakeComplete:
		return nil, &Error{Addr: addr, Stage: stageLocal, Seen: "TLS handshake did not complete"}
	case st.Version < minVersion:
		return nil, &Error{Addr: addr, Stage: stageLocal,
			Seen: fmt.Sprintf("negotiated %s, below the minimum %s", VersionName(st.Version), VersionName(minVersion))}
	case len(st.PeerCertificates) == 0:
		return nil, &Error{Addr: addr, Stage: stageLocal, Seen: "server presented no certificate"}
	case p.RequireALPN != "" && st.NegotiatedProtocol != p.RequireALPN:
		return nil, &Error{Addr: addr, Stage: stageLocal,
			Seen: fmt.Sprintf("direct TLS negotiation requires the server to select ALPN %q but it selected %q; the peer is not a PostgreSQL 17+ server speaking direct TLS", p.RequireALPN, st.NegotiatedProtocol)}
	}
	if p.VerifyChain != nil {
		if err := p.VerifyChain(st.PeerCertificates); err != nil {
			return nil, &Error{Addr: addr, Stage: stageLocal, Seen: "server certificate chain failed re-verification", Err: err}
		}
	}
	return tc, nil
}

// serverQuery reads this backend's pg_stat_ssl row. Names are schema
// qualified so that a search_path set through the connection string cannot
// substitute another relation.
const serverQuery = `SELECT s.ssl, coalesce(s.version, ''), coalesce(s.cipher, ''), coalesce(s.bits, 0),
 coalesce(s.client_dn, ''), coalesce(s.client_serial::text, ''), coalesce(s.issuer_dn, ''), s.pid
 FROM pg_catalog.pg_stat_ssl s WHERE s.pid = pg_catalog.pg_backend_pid()`

const reportKey = "pgsecure.verify.report"

// TLSStater is implemented by *tls.Conn and by wrappers that embed one.
type TLSStater interface {
	ConnectionState() tls.ConnectionState
}

// Server asks the server whether this connection is encrypted, compares its
// answer with the client's TLS state, and returns the Report. On success the
// report is also attached to the connection (see ReportOf).
func Server(ctx context.Context, pgConn *pgconn.PgConn) (Report, error) {
	nc := pgConn.Conn()
	addr := remoteAddr(nc)
	ts, ok := nc.(TLSStater)
	if !ok {
		return Report{}, &Error{Addr: addr, Stage: stageServer,
			Seen: fmt.Sprintf("the connection is a %T that does not expose TLS state; a hook that wraps the connection must embed *tls.Conn", nc)}
	}
	st := ts.ConnectionState()
	if !st.HandshakeComplete {
		return Report{}, &Error{Addr: addr, Stage: stageServer, Seen: "TLS handshake is not complete"}
	}
	row, err := readServerSSL(ctx, pgConn)
	if err != nil {
		return Report{}, &Error{Addr: addr, Stage: stageServer, Seen: "could not read pg_stat_ssl", Err: err}
	}
	local := VersionName(st.Version)
	pooler := detectPooler(pgConn, row.pid) // verify/pooler.go: pg_stat_ssl then describes the pooler→server hop
	if !row.ssl.SSL && pooler != "" {
		return Report{}, poolerPlaintextError(addr, pooler, row.pid, local)
	}
	if !row.ssl.SSL {
		return Report{}, &Error{Addr: addr, Stage: stageServer,
			Seen: fmt.Sprintf("the server reports ssl=false for backend pid %d although the client negotiated %s: "+
				"TLS ends before the server (a TLS-terminating proxy or an interception device sits in between)", row.pid, local)}
	}
	if row.ssl.Version != local && pooler == "" { // behind a pooler the two versions describe different hops
		return Report{}, &Error{Addr: addr, Stage: stageServer,
			Seen: fmt.Sprintf("the server reports %s but the client negotiated %s: the client is not talking to this server's TLS endpoint directly", row.ssl.Version, local)}
	}
	serverName := st.ServerName
	if serverName == "" {
		serverName, _, _ = net.SplitHostPort(addr)
	}
	r := Report{
		Addr:        addr,
		ServerName:  serverName,
		TLSVersion:  local,
		CipherSuite: tls.CipherSuiteName(st.CipherSuite),
		ALPN:        st.NegotiatedProtocol,
		Server:      row.ssl,
		BackendPID:  row.pid,
		VerifiedAt:  time.Now(),
		Pooler:      pooler,
	}
	for _, c := range st.PeerCertificates {
		r.ServerChain = append(r.ServerChain, Describe(c))
	}
	pgConn.CustomData()[reportKey] = r
	return r, nil
}

// ReportOf returns the report Server attached to a connection.
func ReportOf(pgConn *pgconn.PgConn) (Report, bool) {
	r, ok := pgConn.CustomData()[reportKey].(Report)
	return r, ok
}

// Update changes the report attached to a connection (pgsecure adds what it
// observed outside the TLS state: authentication method, client
// certificate). It does nothing when no report is attached.
func Update(pgConn *pgconn.PgConn, fn func(*Report)) {
	if r, ok := ReportOf(pgConn); ok {
		fn(&r)
		pgConn.CustomData()[reportKey] = r
	}
}

type serverRow struct {
	ssl ServerSSL
	pid uint32
}

func readServerSSL(ctx context.Context, pgConn *pgconn.PgConn) (serverRow, error) {
	results, err := pgConn.Exec(ctx, serverQuery).ReadAll()
	if err != nil {
		return serverRow{}, err
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 8 {
		return serverRow{}, errors.New("pg_stat_ssl has no row for this backend")
	}
	v := results[0].Rows[0]
	bits, err := strconv.Atoi(string(v[3]))
	if err != nil {
		return serverRow{}, fmt.Errorf("pg_stat_ssl.bits %q: %w", v[3], err)
	}
	pid, err := strconv.ParseUint(string(v[7]), 10, 32)
	if err != nil {
		return serverRow{}, fmt.Errorf("pg_stat_ssl.pid %q: %w", v[7], err)
	}
	return serverRow{
		ssl: ServerSSL{
			SSL: string(v[0]) == "t", Version: string(v[1]), Cipher: string(v[2]), Bits: bits,
			ClientDN: string(v[4]), ClientSerial: string(v[5]), IssuerDN: string(v[6]),
		},
		pid: uint32(pid),
	}, nil
}

func remoteAddr(nc net.Conn) string {
	if nc == nil || nc.RemoteAddr() == nil {
		return "unknown address"
	}
	return nc.RemoteAddr().String()
}
