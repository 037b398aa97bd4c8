package connect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/verify"
)

// proofStage runs after authentication, installed as ValidateConnect: the
// server must be shown to terminate TLS itself. It runs once per
// connection, then next (the caller's ValidateConnect).
type proofStage struct {
	policy *Policy
	next   func(context.Context, *pgconn.PgConn) error
}

func (s *proofStage) validate(ctx context.Context, pgConn *pgconn.PgConn) error {
	if err := prove(ctx, s.policy, pgConn, false); err != nil {
		return err
	}
	if s.next != nil {
		return s.next(within(ctx), pgConn)
	}
	return nil
}

// Verified refuses a connection that carries no verification report: its
// pipeline did not run (the pool's AfterConnect checks this last, so a
// configuration whose every hook was replaced still cannot hand out an
// unverified connection while the pool's hooks are pgsecure's).
func Verified(ctx context.Context, p *Policy, pgConn *pgconn.PgConn) error {
	if _, ok := ReportOf(pgConn); ok {
		return nil
	}
	return p.notInstalled(ctx, "ValidateConnect", remoteAddr(pgConn.Conn()))
}

// QueryServer adds the server's own view to the report of a connection
// that channel binding proved (Build's startup connection, when its proof
// was not already the server query); it does nothing when the report holds
// the server's view.
func QueryServer(ctx context.Context, p *Policy, pgConn *pgconn.PgConn) error {
	if r, ok := ReportOf(pgConn); ok && r.Proof == verify.ProofServerQuery {
		return nil
	}
	return prove(ctx, p, pgConn, true)
}

type serverQueryKey struct{}

// WithServerQuery returns a context under which every connection proves
// itself by the server query, whatever channel binding proved (Build's
// startup connection: its report and its Verified event then say so).
func WithServerQuery(ctx context.Context) context.Context {
	return context.WithValue(ctx, serverQueryKey{}, true)
}

// prove attaches a verified report to pgConn or refuses the connection.
//
// When SCRAM-SHA-256-PLUS completed, the server has already proven what the
// query would ask: PostgreSQL offers PLUS only on a backend whose own
// connection is TLS, and checks the client's channel-binding data (the hash
// of the certificate the client verified) against its own certificate
// inside the proof both sides sign. Otherwise the server is asked for its
// view of this backend. With forceQuery on a connection that has a report
// (QueryServer), only the server's view is added.
func prove(ctx context.Context, p *Policy, pgConn *pgconn.PgConn, forceQuery bool) error {
	forceQuery = forceQuery || ctx.Value(serverQueryKey{}) != nil
	prior, attached := ReportOf(pgConn) // only QueryServer's connection has one already
	nc := pgConn.Conn()
	a := attemptOf(nc)
	tc := tlsConnOf(nc)
	if a != nil && !a.isVerified() {
		// Only the local stage marks an attempt verified, and a refusal
		// there ends the connect: fail closed if that ever changes.
		return &verify.Error{Addr: remoteAddr(nc), Stage: verify.StageTLSHandshake, Seen: "the TLS handshake was not verified before authentication"}
	}
	r, bound := prior, prior.Proof == verify.ProofChannelBinding
	if !attached {
		r, bound = clientReport(p, pgConn, a, tc)
	}
	var checkTime time.Duration
	if bound && !p.QueryEveryConnection && !forceQuery {
		r.Proof = verify.ProofChannelBinding
	} else {
		if a != nil {
			a.setStage(verify.StageServerCheck)
		}
		start := time.Now()
		row, err := readServerSSL(ctx, pgConn)
		checkTime = time.Since(start)
		var te *TimeoutError
		if errors.As(err, &te) {
			return te // the server did not answer in time: not a refusal
		}
		pooler := ""
		if err == nil {
			pooler = detectPooler(pgConn, row.pid) // the server's row then describes the pooler's own hop
			err = compare(row, r, tc, pooler)
		}
		if err != nil {
			p.Observer.Refused(ctx, Refusal{Kind: RefusedServerProof, Host: r.ServerName, Addr: r.Addr, Stage: verify.StageServerCheck, Err: err})
			return err
		}
		r.Server, r.BackendPID, r.Proof, r.Pooler = row.ssl, row.pid, verify.ProofServerQuery, pooler
		if r.TLSVersion == "" {
			r.TLSVersion = row.ssl.Version
		}
	}
	r.VerifiedAt = time.Now()
	attachReport(pgConn, r)
	if a != nil {
		a.connectDone() // verified: pgsecure leaves the data path
	}
	if !attached {
		t := Timings{ServerCheck: checkTime}
		if a != nil {
			t.Handshake = a.handshakeDone
		}
		p.Observer.Verified(ctx, r, t)
	}
	return nil
}

// clientReport describes the connection as the client saw it, and whether
// authentication completed bound to the TLS channel.
func clientReport(p *Policy, pgConn *pgconn.PgConn, a *attempt, tc *tls.Conn) (r verify.Report, bound bool) {
	r = verify.Report{Addr: remoteAddr(pgConn.Conn()), BackendPID: pgConn.PID()}
	if a != nil {
		r.ServerName = a.host
		if tc == nil {
			tc = a.tlsConn
		}
		if w := a.watchFor(); w != nil {
			r.AuthMethod, r.SASLMechanism, bound = w.observation()
		}
	}
	if tc != nil {
		st := tc.ConnectionState()
		r.TLSVersion = verify.VersionName(st.Version)
		r.CipherSuite = tls.CipherSuiteName(st.CipherSuite)
		r.ALPN = st.NegotiatedProtocol
		for _, c := range st.PeerCertificates {
			r.ServerChain = append(r.ServerChain, verify.Describe(c))
		}
		if r.ServerName == "" {
			r.ServerName = st.ServerName
		}
	} else {
		bound = false // the TLS state is hidden: the binding cannot be tied to a verified handshake
	}
	if r.ServerName == "" {
		r.ServerName, _, _ = net.SplitHostPort(r.Addr)
	}
	if cert := p.TLS.ClientLeaf(); cert != nil {
		d := verify.Describe(cert)
		r.ClientCertificate = &d
	}
	return r, bound
}

// compare checks the server's answer against the client's view.
func compare(row serverRow, r verify.Report, tc *tls.Conn, pooler string) error {
	if !row.ssl.SSL && pooler != "" {
		return poolerPlaintextError(r.Addr, pooler, row.pid, r.TLSVersion)
	}
	if !row.ssl.SSL {
		local := "TLS"
		if r.TLSVersion != "" {
			local = r.TLSVersion
		}
		return &verify.Error{Addr: r.Addr, Stage: verify.StageServerCheck,
			Seen: fmt.Sprintf("the server reports ssl=false for backend pid %d although the client negotiated %s: "+
				"TLS ends before the server (a TLS-terminating proxy or an interception device sits in between)", row.pid, local)}
	}
	if tc != nil && r.TLSVersion != "" && row.ssl.Version != r.TLSVersion && pooler == "" { // behind a pooler the versions describe different hops
		return &verify.Error{Addr: r.Addr, Stage: verify.StageServerCheck,
			Seen: fmt.Sprintf("the server reports %s but the client negotiated %s: the client is not talking to this server's TLS endpoint directly", row.ssl.Version, r.TLSVersion)}
	}
	return nil
}

// serverQuery reads this backend's TLS state. pg_stat_get_activity with
// the backend's pid reads one backend (the pg_stat_ssl view reads them
// all); columns are selected by name and names are schema-qualified, so a
// search_path set through the connection string cannot substitute another
// function.
const serverQuery = `SELECT a.ssl, coalesce(a.sslversion, ''), coalesce(a.sslcipher, ''), coalesce(a.sslbits, 0),
 coalesce(a.ssl_client_dn, ''), coalesce(a.ssl_client_serial::text, ''), coalesce(a.ssl_issuer_dn, ''), a.pid
 FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a`

type serverRow struct {
	ssl verify.ServerSSL
	pid uint32
}

func readServerSSL(ctx context.Context, pgConn *pgconn.PgConn) (serverRow, error) {
	fail := func(err error) (serverRow, error) {
		return serverRow{}, &verify.Error{Addr: remoteAddr(pgConn.Conn()), Stage: verify.StageServerCheck, Seen: "could not read the server's view of this connection (pg_stat_get_activity)", Err: err}
	}
	results, err := pgConn.Exec(ctx, serverQuery).ReadAll()
	if err != nil {
		return fail(err)
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 8 {
		return fail(errors.New("no row for this backend"))
	}
	v := results[0].Rows[0]
	bits, err := strconv.Atoi(string(v[3]))
	if err != nil {
		return fail(fmt.Errorf("sslbits %q: %w", v[3], err))
	}
	pid, err := strconv.ParseUint(string(v[7]), 10, 32)
	if err != nil {
		return fail(fmt.Errorf("pid %q: %w", v[7], err))
	}
	return serverRow{
		ssl: verify.ServerSSL{
			SSL: string(v[0]) == "t", Version: string(v[1]), Cipher: string(v[2]), Bits: bits,
			ClientDN: string(v[4]), ClientSerial: string(v[5]), IssuerDN: string(v[6]),
		},
		pid: uint32(pid),
	}, nil
}
