package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgsecure/pgsecure/cmd/pgsecure/internal/pgwire"
	"github.com/pgsecure/pgsecure/verify"
)

// checkOutput is the whole output of `pgsecure check`: one document for all
// targets. Its JSON field names are stable (see SCHEMA.md).
type checkOutput struct {
	SchemaVersion int            `json:"schema_version"`
	Verdict       string         `json:"verdict"`
	ExitCode      int            `json:"exit_code"`
	Targets       []*checkReport `json:"targets"`
}

// schemaVersion changes when a field changes meaning or disappears.
const schemaVersion = 3 // 3: serials in hexadecimal, as openssl prints them

// checkReport is what `pgsecure check` found about one target.
type checkReport struct {
	Target   string `json:"target"`
	Verdict  string `json:"verdict"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
	Hint     string `json:"hint,omitempty"`

	Stages []stage `json:"stages"`

	Addr       string `json:"addr,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	User       string `json:"user,omitempty"`
	Database   string `json:"database,omitempty"`
	BackendPID uint32 `json:"backend_pid,omitempty"`
	// Pooler is set when the peer is a connection pooler (verify.Report.Pooler).
	Pooler string `json:"pooler,omitempty"`

	TLS         *tlsInfo       `json:"tls,omitempty"`
	ServerChain []certInfo     `json:"server_chain,omitempty"`
	LeafSPKIPin string         `json:"leaf_spki_pin,omitempty"`
	CRLs        []crlInfo      `json:"crls,omitempty"`
	PgStatSSL   *pgStatSSLInfo `json:"pg_stat_ssl,omitempty"`
	Auth        *authInfo      `json:"authentication,omitempty"`
	ClientDN    string         `json:"client_dn,omitempty"`
	Probe       *probeInfo     `json:"plaintext_probe,omitempty"`
	Findings    []finding      `json:"findings"`

	// exitFromError is the exit code the connection error alone gives.
	exitFromError int
}

// Step names, in the order a connection goes through them. check reports
// the TLS handshake in three steps (the exchange, the chain, the host
// name); each step belongs to one stage of the library's (verify.Stage),
// which the report names beside it.
const (
	stageTCP    = "tcp"
	stageTLS    = "tls"
	stageChain  = "chain"
	stageHost   = "host"
	stageAuth   = "authentication"
	stageServer = "server_proof"
)

// stageOf is the library's stage each step belongs to.
var stageOf = map[string]verify.Stage{
	stageTCP: verify.StageTCP, stageTLS: verify.StageTLSHandshake, stageChain: verify.StageTLSHandshake,
	stageHost: verify.StageTLSHandshake, stageAuth: verify.StageAuth, stageServer: verify.StageServerCheck,
}

var stageOrder = []string{stageTCP, stageTLS, stageChain, stageHost, stageAuth, stageServer}

// Stage results.
const (
	stagePassed     = "passed"
	stageFailed     = "failed"
	stageNotReached = "not reached"
)

// stage is one step of the connection and how far check got.
type stage struct {
	Name   string       `json:"name"`
	Stage  verify.Stage `json:"stage"` // the library's stage (errors, events, logs) this step belongs to
	Result string       `json:"result"`
	Detail string       `json:"detail,omitempty"`
}

type tlsInfo struct {
	Version string `json:"version"`
	Cipher  string `json:"cipher"`
	ALPN    string `json:"alpn,omitempty"`
}

type certInfo struct {
	Subject       string    `json:"subject"`
	Issuer        string    `json:"issuer"`
	DNSNames      []string  `json:"dns_names"`
	IPAddresses   []string  `json:"ip_addresses"`
	Serial        string    `json:"serial"`
	NotAfter      time.Time `json:"not_after"`
	ExpiresInDays int       `json:"expires_in_days"`
	SPKIPin       string    `json:"spki_pin"`
}

type pgStatSSLInfo struct {
	SSL          bool   `json:"ssl"`
	Version      string `json:"version"`
	Cipher       string `json:"cipher"`
	Bits         int    `json:"bits"`
	ClientDN     string `json:"client_dn"`
	ClientSerial string `json:"client_serial"`
	IssuerDN     string `json:"issuer_dn"`
}

type authInfo struct {
	// Method is libpq's require_auth spelling ("scram-sha-256", "md5",
	// "password", "none", ...), as verify.Report.AuthMethod.
	Method string `json:"method"`
	// ChannelBinding is true when SCRAM was bound to the TLS channel
	// (SCRAM-SHA-256-PLUS).
	ChannelBinding bool     `json:"channel_binding"`
	SASLMechanism  string   `json:"sasl_mechanism,omitempty"`
	SASLOffered    []string `json:"sasl_offered,omitempty"`
	Requests       []uint32 `json:"requests"`
}

type probeInfo struct {
	Result   string `json:"result"` // accepted, refused, inconclusive, unknown
	AuthCode *int   `json:"auth_code,omitempty"`
	SQLState string `json:"sqlstate,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Finding severities, from harmless to failing the check. sevUnchecked is a
// check that could not run (for lack of privilege or of an answer): it is
// never a pass.
const (
	sevOK        = "ok"
	sevInfo      = "info"
	sevUnchecked = "unchecked"
	sevWarning   = "warning"
	sevInsecure  = "insecure"
)

// finding is one verdict: which check, how bad, what was seen, how to fix it.
type finding struct {
	Check    string `json:"check"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Fix      string `json:"fix,omitempty"`
}

func (r *checkReport) add(check, sev, msg, fix string) {
	r.Findings = append(r.Findings, finding{Check: check, Severity: sev, Message: msg, Fix: fix})
}

// setVerified copies what pgsecure verified about the connection.
func (r *checkReport) setVerified(v verify.Report, now time.Time) {
	r.Addr, r.ServerName, r.BackendPID, r.Pooler = v.Addr, v.ServerName, v.BackendPID, v.Pooler
	r.setTLS(v.TLSVersion, v.CipherSuite, v.ALPN, v.ServerChain, now)
	s := v.Server
	r.PgStatSSL = &pgStatSSLInfo{SSL: s.SSL, Version: s.Version, Cipher: s.Cipher, Bits: s.Bits,
		ClientDN: s.ClientDN, ClientSerial: hexSerialOf(s.ClientSerial), IssuerDN: s.IssuerDN}
	r.ClientDN = s.ClientDN
}

// setTLS records the verified TLS session and the server's chain.
func (r *checkReport) setTLS(version, cipher, alpn string, chain []verify.Certificate, now time.Time) {
	r.TLS = &tlsInfo{Version: version, Cipher: cipher, ALPN: alpn}
	r.ServerChain = nil
	for _, c := range chain {
		r.ServerChain = append(r.ServerChain, certInfo{
			Subject: c.Subject, Issuer: c.Issuer, DNSNames: nonNil(c.DNSNames), IPAddresses: nonNil(c.IPAddresses),
			Serial: hexSerialOf(c.SerialNumber), NotAfter: c.NotAfter.UTC(), ExpiresInDays: c.DaysUntilExpiry(now), SPKIPin: c.SPKIPin,
		})
	}
	if len(chain) > 0 {
		r.LeafSPKIPin = chain[0].SPKIPin
	}
}

func (r *checkReport) setAuth(a pgwire.Auth) {
	if len(a.Requests) == 0 {
		return
	}
	r.Auth = &authInfo{Method: a.Method(), Requests: a.Requests, SASLOffered: a.Offered,
		SASLMechanism: a.Mechanism, ChannelBinding: a.ChannelBinding()}
}

// judge adds the findings about the connection itself (the server audit adds
// its own) and sets the verdict and exit code.
func (r *checkReport) judge(expiryDays int) {
	later := r.Findings // the audit's and the builder's come after the connection's
	r.Findings = []finding{}
	defer func() {
		r.Findings = append(r.Findings, later...)
		r.finish()
	}()
	switch {
	case r.TLS != nil && r.Pooler != "":
		r.add("tls", sevOK, fmt.Sprintf("TLS %s to the pooler verified (verify-full, pinned CA)", r.TLS.Version), "")
		version := ""
		if r.PgStatSSL != nil {
			version = r.PgStatSSL.Version
		}
		r.add("pooler", sevWarning, fmt.Sprintf("the peer is %s; the server reports the pooler's own connection as TLS %s, "+
			"but whether the pooler verifies the server's certificate cannot be seen from here", r.Pooler, version),
			"for PgBouncer use server_tls_sslmode = verify-full with server_tls_ca_file")
	case r.TLS != nil:
		r.add("tls", sevOK, fmt.Sprintf("TLS %s verified (verify-full, pinned CA)", r.TLS.Version), "")
	}
	if r.PgStatSSL != nil && r.Pooler == "" {
		r.add("server_proof", sevOK, "the server's pg_stat_ssl confirms this session is encrypted", "")
	}
	r.judgeExpiry(expiryDays)
	r.judgeCRLs(expiryDays, time.Now())
	r.judgeAuth()
	r.judgeProbe()
}

func (r *checkReport) judgeExpiry(expiryDays int) {
	for i, c := range r.ServerChain {
		what := "server certificate"
		if i > 0 {
			what = "CA certificate"
		}
		switch d := c.ExpiresInDays; {
		case d < 0:
			r.add("certificate_expiry", sevInsecure, fmt.Sprintf("%s %q expired on %s", what, c.Subject, c.NotAfter.Format(time.DateOnly)),
				"renew it (pgsecure certs renew) and reload PostgreSQL")
		case d < expiryDays:
			r.add("certificate_expiry", sevWarning, fmt.Sprintf("%s %q expires in %d days (%s)", what, c.Subject, d, c.NotAfter.Format(time.DateOnly)),
				"renew it: pgsecure certs renew --cert FILE --key FILE --ca-dir DIR --reload DSN")
		case i == 0:
			r.add("certificate_expiry", sevOK, fmt.Sprintf("server certificate expires in %d days (%s)", d, c.NotAfter.Format(time.DateOnly)), "")
		}
	}
}

func (r *checkReport) judgeAuth() {
	if r.Auth == nil {
		return
	}
	const check = "authentication"
	switch m := r.Auth.Method; m {
	case "scram-sha-256":
		if r.Auth.ChannelBinding {
			r.add(check, sevOK, "scram-sha-256 with channel binding (SCRAM-SHA-256-PLUS)", "")
		} else {
			r.add(check, sevInfo, fmt.Sprintf("scram-sha-256 without channel binding (the client chose %s)", r.Auth.SASLMechanism), "")
		}
	case "md5":
		r.add(check, sevWarning, "the server asked for md5 password authentication, which is deprecated",
			"set password_encryption = 'scram-sha-256', reset the role's password, and use scram-sha-256 in pg_hba.conf")
		// PostgreSQL answers an md5 line with SCRAM when the role has a SCRAM
		// verifier: asking for md5 shows an MD5 hash, which logs in like the
		// password itself. Shown whether pgsecure went on or not.
		r.add("role_password", sevInsecure, fmt.Sprintf("the password of role %q is stored as an MD5 hash (shown by the server asking for md5)", r.User),
			rolePasswordFix)
	case "password":
		r.add(check, sevWarning, "the server asked for the password in cleartext (pg_hba \"password\"): it receives the password itself",
			"use scram-sha-256 in pg_hba.conf")
	case "none":
		if r.ClientDN != "" {
			r.add(check, sevInfo, fmt.Sprintf("the server asked for no password: the client certificate %q authenticated (pg_hba \"cert\") or the line is \"trust\"", r.ClientDN), "")
		} else {
			r.add(check, sevInsecure, fmt.Sprintf("the server let user %q in without any authentication (pg_hba \"trust\")", r.User),
				"replace trust with scram-sha-256 in pg_hba.conf")
		}
	default:
		r.add(check, sevInfo, "authentication method "+m, "")
	}
}

func (r *checkReport) judgeProbe() {
	p := r.Probe
	if p == nil {
		return
	}
	const check = "plaintext"
	switch p.Result {
	case string(pgwire.Refused):
		r.add(check, sevOK, fmt.Sprintf("plaintext refused (good): the server rejected a connection without TLS for user %q database %q", r.User, r.Database), "")
	case string(pgwire.Accepted):
		how := "asked for authentication"
		if p.AuthCode != nil && *p.AuthCode == pgwire.AuthOK {
			how = "let the client in WITHOUT ANY PASSWORD"
		}
		r.add(check, sevInsecure, fmt.Sprintf("server accepts plaintext connections for user %q database %q (it %s over an unencrypted connection; "+
			"the probe sent no password)", r.User, r.Database, how),
			"add `hostnossl all all 0.0.0.0/0 reject` (and `hostnossl all all ::/0 reject`) before other host lines in pg_hba.conf")
	case string(pgwire.Inconclusive):
		r.add(check, sevUnchecked, "not checked: the plaintext probe was inconclusive: "+strings.TrimSpace(p.SQLState+" "+p.Message), "")
	default:
		r.add(check, sevUnchecked, "not checked: "+p.Message, "")
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
