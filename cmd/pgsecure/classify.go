package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/pgsecure/pgsecure/verify"
)

// progress records how far one connection attempt got, from pgx's public
// hooks: the TCP dial and the connection handed over after pgsecure's own
// checks of the TLS session (which pass only for a verified chain and host).
type progress struct {
	mu        sync.Mutex
	attempted bool // a connection was tried (install ran)
	tcp       bool
	tlsState  *tls.ConnectionState
	addr      string // the server's address once TLS was verified
}

// install wraps cc's DialFunc and AfterNetConnect, outermost, so that what
// they see is what pgsecure let through.
func (p *progress) install(cc *pgconn.Config) {
	p.mu.Lock()
	p.attempted = true
	p.mu.Unlock()
	dial := cc.DialFunc
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err == nil {
			p.mu.Lock()
			p.tcp = true
			p.mu.Unlock()
		}
		return nc, err
	}
	after := cc.AfterNetConnect
	cc.AfterNetConnect = func(ctx context.Context, cfg *pgconn.Config, nc net.Conn) (net.Conn, error) {
		if after != nil {
			var err error
			if nc, err = after(ctx, cfg, nc); err != nil {
				return nc, err
			}
		}
		if tc, ok := nc.(*tls.Conn); ok && tc.ConnectionState().HandshakeComplete {
			st := tc.ConnectionState()
			p.mu.Lock()
			p.tlsState, p.addr = &st, tc.RemoteAddr().String()
			p.mu.Unlock()
		}
		return nc, nil
	}
}

func (p *progress) snapshot() (attempted, tcp bool, st *tls.ConnectionState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempted, p.tcp, p.tlsState
}

// recordFailure fills r from a failed connection attempt: the verified TLS
// session when there was one, the stages, the exit code and a hint in
// command-line terms.
func (r *checkReport) recordFailure(err error, p *progress, timeout time.Duration, now time.Time) {
	attempted, tcp, st := p.snapshot()
	if st != nil {
		var chain []verify.Certificate
		for _, c := range st.PeerCertificates {
			chain = append(chain, verify.Describe(c))
		}
		r.setTLS(verify.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol, chain, now)
		r.Addr, r.ServerName = p.addr, st.ServerName
	}
	// The error line says where and what; the hint line what to do: the
	// command's own hint when it has one, else the library's fix, as the
	// library wrote it (its fixes name the libpq setting, the Builder option
	// and this command's flag).
	var fix string
	r.Error, fix = errorLine(err)
	r.exitFromError, r.Hint = classify(err, tcp, st != nil, r, timeout)
	if r.Hint == "" {
		r.Hint = fix
	}
	r.Stages = stagesOf(err, attempted, tcp, st != nil)
}

// errorLine splits a refusal into the line that says where and what and
// the fix, from the fields of the library's typed errors.
func errorLine(err error) (line, fix string) {
	var (
		connErr *pgsecure.ConnectError
		cfgErr  *pgsecure.ConfigError
		certErr *pgsecure.CertificateError
	)
	switch {
	case errors.As(err, &connErr):
		line = fmt.Sprintf("pgsecure: %s (user %s, database %s): %s",
			net.JoinHostPort(connErr.Host, strconv.Itoa(int(connErr.Port))), connErr.User, connErr.Database, connErr.Problem)
		if connErr.Stage != "" {
			line += "; stage: " + string(connErr.Stage) // the stage the steps of the report belong to
		}
		return line, connErr.Fix
	case errors.As(err, &cfgErr):
		line = "pgsecure: " + cfgErr.Setting
		if cfgErr.From != "" {
			line += " (from " + cfgErr.From + ")"
		}
		line += ": " + cfgErr.Problem
		if cfgErr.Err != nil {
			line += ": " + cfgErr.Err.Error()
		}
		return line, cfgErr.Fix
	case errors.As(err, &certErr):
		line = fmt.Sprintf("pgsecure: server certificate for host %q refused: %s", certErr.Host, certErr.Problem)
		if certErr.Err != nil {
			line += " (" + certErr.Err.Error() + ")"
		}
		return line, certErr.Fix
	}
	return err.Error(), ""
}

// classify maps a connection error to an exit code and a hint.
func classify(err error, tcp, verifiedTLS bool, r *checkReport, timeout time.Duration) (int, string) {
	var (
		pgErr   *pgconn.PgError
		verr    *verify.Error
		hostErr x509.HostnameError
		unknown x509.UnknownAuthorityError
		ccr     *pgsecure.ClientCertificateRequiredError
	)
	switch {
	case errors.Is(err, pgsecure.ErrInsecureConfig), errors.Is(err, secrets.ErrInvalid), errors.Is(err, secrets.ErrUnknownScheme):
		return exitUsage, ""
	case errors.Is(err, pgsecure.ErrInsecureAuth):
		return authRefusalExit(r), authRefusalHint(r)
	case errors.As(err, &verr) && verr.Transient():
		return exitUnreachable, "the connection broke during the check; run it again"
	case errors.As(err, &hostErr):
		return exitInsecure, "connect with a host name the server certificate names (see its names above), or reissue the certificate with this name (pgsecure certs server --dns/--ip)"
	case errors.As(err, &unknown):
		return exitInsecure, "if this server is yours, pass the CA that issued its certificate with --ca FILE (or --system-roots for a publicly-issued certificate)"
	case errors.Is(err, pgsecure.ErrNotEncrypted):
		return exitInsecure, ""
	case errors.As(err, &ccr):
		return exitNoLogin, "the server asked for a client certificate and refused the login without one: pass --cert FILE --key FILE (pgsecure certs client creates one), or add a hostssl line to pg_hba.conf if the server says it has none"
	case errors.As(err, &pgErr):
		return classifyServerRefusal(pgErr, r)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return exitUnreachable, fmt.Sprintf("no answer within --timeout %s during %s: check the host, port and firewall, or raise --timeout", timeout, firstUnpassed(tcp, verifiedTLS))
	}
	return exitUnreachable, ""
}

// authRefusalExit is the exit code of a login pgsecure declined for the
// method the server asked for. The verdict is the method's finding
// (judgeAuth), the same as when require_auth lets the login go on: md5 shows
// an MD5-stored password (insecure, 1), trust is insecure (1), a cleartext
// password a warning (5). Methods judgeAuth has no verdict on (gss, sspi,
// ...) leave the login undone: cannot log in (3).
func authRefusalExit(r *checkReport) int {
	if r.Auth != nil {
		switch r.Auth.Method {
		case "md5", "password", "none":
			return exitOK // the findings decide
		}
	}
	return exitNoLogin
}

func authRefusalHint(r *checkReport) string {
	m := "the method it asked for"
	if r.Auth != nil {
		m = r.Auth.Method
	}
	return fmt.Sprintf("the server asked for %s, which pgsecure refuses (applications using it cannot log in as this role): "+
		"use scram-sha-256 in pg_hba.conf; to check the rest of the server anyway, add require_auth=%s to the DSN", m, m)
}

// classifyServerRefusal handles an ErrorResponse from the server, by its
// SQLSTATE (the message may be translated).
func classifyServerRefusal(e *pgconn.PgError, r *checkReport) (int, string) {
	switch {
	case e.Code == "28000":
		return exitNoLogin, fmt.Sprintf("pg_hba.conf has no line letting user %q into database %q from this address over TLS, or the role does not exist: "+
			"add a line such as \"hostssl %s %s CLIENT_ADDRESS/32 scram-sha-256\" (CLIENT_ADDRESS: this machine's address as the server sees it) "+
			"and reload the server, or create the role", r.User, r.Database, r.Database, r.User)
	case e.Code == "28P01":
		return exitNoLogin, fmt.Sprintf("the server rejected the password of user %q: check the DSN's password, PGPASSWORD or --credentials", r.User)
	case strings.HasPrefix(e.Code, "28"), e.Code == "3D000", e.Code == "42501":
		return exitNoLogin, ""
	}
	return exitUnreachable, ""
}

// firstUnpassed names the stage a timed-out connection was in.
func firstUnpassed(tcp, verifiedTLS bool) string {
	switch {
	case !tcp:
		return "the TCP connection"
	case !verifiedTLS:
		return "the TLS handshake"
	}
	return "authentication"
}

// stagesOf says which stages a failed attempt passed, failed or never reached.
func stagesOf(err error, attempted, tcp, verifiedTLS bool) []stage {
	res := map[string]stage{}
	set := func(name, result, detail string) { res[name] = stage{Name: name, Result: result, Detail: detail} }
	var (
		ce      *pgsecure.CertificateError
		verr    *verify.Error
		hostErr x509.HostnameError
	)
	switch {
	case tcp:
		set(stageTCP, stagePassed, "")
	case attempted:
		set(stageTCP, stageFailed, "")
	}
	switch {
	case verifiedTLS:
		for _, s := range []string{stageTLS, stageChain, stageHost} {
			set(s, stagePassed, "")
		}
		if errors.As(err, &verr) && verr.Stage == verify.StageServerCheck {
			set(stageAuth, stagePassed, "")
			set(stageServer, stageFailed, verr.Seen)
		} else {
			set(stageAuth, stageFailed, authFailure(err))
		}
	case errors.As(err, &ce) && errors.As(err, &hostErr):
		set(stageTLS, stageFailed, "aborted by the client: the certificate does not name the host")
		set(stageChain, stagePassed, "")
		set(stageHost, stageFailed, ce.Problem)
	case errors.As(err, &ce):
		set(stageTLS, stageFailed, "aborted by the client: the certificate was not trusted")
		set(stageChain, stageFailed, ce.Problem)
	case tcp:
		set(stageTLS, stageFailed, "")
	}
	out := make([]stage, 0, len(stageOrder))
	for _, name := range stageOrder {
		s, ok := res[name]
		if !ok {
			s = stage{Name: name, Result: stageNotReached}
		}
		s.Stage = stageOf[name]
		out = append(out, s)
	}
	return out
}

// authFailure says who ended the login and why, for the stage's detail.
func authFailure(err error) string {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgsecure.ErrInsecureAuth):
		return "refused by pgsecure: the server asked for a method it does not allow"
	case errors.As(err, &pgErr):
		return fmt.Sprintf("refused by the server: %s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	}
	return ""
}

// passedStages is every stage passed: a connection that was fully verified.
func passedStages() []stage {
	out := make([]stage, 0, len(stageOrder))
	for _, name := range stageOrder {
		out = append(out, stage{Name: name, Stage: stageOf[name], Result: stagePassed})
	}
	return out
}

// builderFlags names the command-line flag behind each Builder option
// check sets. A refused setting is reported under the flag (ConfigError's
// Setting and From are structured fields; their text is not touched).
var builderFlags = map[string]string{
	"RootCAFile": "--ca", "SystemRoots": "--system-roots", "ClientCertFiles": "--cert/--key",
	"SPKIPins": "--pin", "CRLFiles": "--crl", "CRLDir": "--crl-dir",
}

// attributeFlags makes a refused setting that check gave the builder name
// the flag it came from, in the error's Setting and From fields.
func attributeFlags(err error) {
	var ce *pgsecure.ConfigError
	if errors.As(err, &ce) && ce.From == "builder" {
		if flag, ok := builderFlags[ce.Setting]; ok {
			ce.Setting, ce.From = flag, "the command line"
		}
	}
}
