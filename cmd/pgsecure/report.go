package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgsecure/pgsecure/cmd/pgsecure/internal/pgwire"
	"github.com/pgsecure/pgsecure/verify"
)

// checkReport is what `pgsecure check` found. Its JSON field names are
// stable: scripts may rely on them.
type checkReport struct {
	Secure   bool   `json:"secure"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`

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
	PgStatSSL   *pgStatSSLInfo `json:"pg_stat_ssl,omitempty"`
	Auth        *authInfo      `json:"authentication,omitempty"`
	ClientDN    string         `json:"client_dn,omitempty"`
	Probe       *probeInfo     `json:"plaintext_probe,omitempty"`
	Findings    []finding      `json:"findings"`
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
	// Method is pgwire.Auth.Method's spelling ("scram-sha-256-plus", "md5", ...).
	Method         string   `json:"method"`
	Requests       []uint32 `json:"requests"`
	SASLOffered    []string `json:"sasl_offered,omitempty"`
	SASLMechanism  string   `json:"sasl_mechanism,omitempty"`
	ChannelBinding bool     `json:"channel_binding"`
}

type probeInfo struct {
	Result   string `json:"result"` // accepted, refused, inconclusive, failed
	AuthCode *int   `json:"auth_code,omitempty"`
	SQLState string `json:"sqlstate,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Finding severities, from harmless to failing the check.
const (
	sevOK       = "ok"
	sevInfo     = "info"
	sevWarning  = "warning"
	sevInsecure = "insecure"
)

type finding struct {
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

func (r *checkReport) add(sev, format string, args ...any) {
	r.Findings = append(r.Findings, finding{Severity: sev, Message: fmt.Sprintf(format, args...)})
}

// setVerified copies what pgsecure verified about the connection.
func (r *checkReport) setVerified(v verify.Report, now time.Time) {
	r.Addr, r.ServerName, r.BackendPID, r.Pooler = v.Addr, v.ServerName, v.BackendPID, v.Pooler
	r.TLS = &tlsInfo{Version: v.TLSVersion, Cipher: v.CipherSuite, ALPN: v.ALPN}
	for _, c := range v.ServerChain {
		r.ServerChain = append(r.ServerChain, certInfo{
			Subject: c.Subject, Issuer: c.Issuer, DNSNames: nonNil(c.DNSNames), IPAddresses: nonNil(c.IPAddresses),
			NotAfter: c.NotAfter.UTC(), ExpiresInDays: c.DaysUntilExpiry(now), SPKIPin: c.SPKIPin,
		})
	}
	r.LeafSPKIPin = v.Leaf().SPKIPin
	s := v.Server
	r.PgStatSSL = &pgStatSSLInfo{SSL: s.SSL, Version: s.Version, Cipher: s.Cipher, Bits: s.Bits,
		ClientDN: s.ClientDN, ClientSerial: s.ClientSerial, IssuerDN: s.IssuerDN}
	r.ClientDN = s.ClientDN
}

func (r *checkReport) setAuth(a pgwire.Auth) {
	if len(a.Requests) == 0 {
		return
	}
	r.Auth = &authInfo{Method: a.Method(), Requests: a.Requests, SASLOffered: a.Offered,
		SASLMechanism: a.Mechanism, ChannelBinding: a.ChannelBinding()}
}

// expiryWarning is how close to expiry a certificate gets a warning.
const expiryWarning = 30

// judge adds the findings about what was observed and sets Secure.
func (r *checkReport) judge() {
	switch {
	case r.TLS != nil && r.Pooler != "":
		r.add(sevOK, "TLS %s to the pooler verified (verify-full, pinned CA)", r.TLS.Version)
		r.add(sevWarning, "the peer is %s; the server's pg_stat_ssl reports the pooler's own connection as TLS %s, "+
			"but whether the pooler verifies the server's certificate cannot be seen from here: for PgBouncer use server_tls_sslmode = verify-full",
			r.Pooler, r.PgStatSSL.Version)
	case r.TLS != nil:
		r.add(sevOK, "TLS %s verified (verify-full, pinned CA) and confirmed by the server's pg_stat_ssl", r.TLS.Version)
	}
	for _, c := range r.ServerChain {
		if c.ExpiresInDays < expiryWarning {
			r.add(sevWarning, "certificate %q expires in %d days (%s): renew it", c.Subject, c.ExpiresInDays, c.NotAfter.Format(time.DateOnly))
		}
	}
	r.judgeAuth()
	r.judgeProbe()
	r.Secure = r.Error == ""
	for _, f := range r.Findings {
		if f.Severity == sevInsecure {
			r.Secure = false
		}
	}
}

func (r *checkReport) judgeAuth() {
	if r.Auth == nil {
		return
	}
	switch m := r.Auth.Method; m {
	case "scram-sha-256-plus":
		r.add(sevOK, "authentication scram-sha-256 with channel binding (SCRAM-SHA-256-PLUS)")
	case "scram-sha-256":
		r.add(sevInfo, "authentication scram-sha-256 without channel binding (the client chose %s)", r.Auth.SASLMechanism)
	case "md5":
		r.add(sevWarning, "the server asked for md5 password authentication, which is deprecated: set password_encryption = 'scram-sha-256', reset the role's password, and use scram-sha-256 in pg_hba.conf")
	case "password":
		r.add(sevWarning, "the server asked for the password in cleartext (pg_hba \"password\"): it receives the password itself; use scram-sha-256 in pg_hba.conf")
	case "trust":
		if r.ClientDN != "" {
			r.add(sevInfo, "the server asked for no password: the client certificate %q authenticated (pg_hba \"cert\") or the line is \"trust\"", r.ClientDN)
		} else {
			r.add(sevInsecure, "the server let user %q in without any authentication (pg_hba \"trust\"): replace trust with scram-sha-256 in pg_hba.conf", r.User)
		}
	default:
		r.add(sevInfo, "authentication method %s", m)
	}
}

func (r *checkReport) judgeProbe() {
	p := r.Probe
	if p == nil {
		return
	}
	switch p.Result {
	case string(pgwire.Refused):
		r.add(sevOK, "plaintext refused (good): the server rejected a connection without TLS for user %q database %q", r.User, r.Database)
	case string(pgwire.Accepted):
		how := "asked for authentication"
		if p.AuthCode != nil && *p.AuthCode == pgwire.AuthOK {
			how = "let the client in WITHOUT ANY PASSWORD"
		}
		r.add(sevInsecure, "server accepts plaintext connections for user %q database %q (it %s over an unencrypted connection; "+
			"the probe sent no password): add `hostnossl all all 0.0.0.0/0 reject` (and `hostnossl all all ::/0 reject`) "+
			"before other host lines in pg_hba.conf", r.User, r.Database, how)
	case string(pgwire.Inconclusive):
		r.add(sevWarning, "plaintext probe inconclusive: %s", strings.TrimSpace(p.SQLState+" "+p.Message))
	default:
		r.add(sevWarning, "plaintext probe failed: %s", p.Message)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
