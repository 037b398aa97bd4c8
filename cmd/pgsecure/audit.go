package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgsecure/pgsecure/cmd/pgsecure/internal/pgwire"
	"github.com/pgsecure/pgsecure/verify"
)

// goodCiphers is the ssl_ciphers value the audit recommends: the TLS 1.2
// suites of Mozilla's "intermediate" configuration (forward secrecy, AEAD
// only). TLS 1.3 suites are not governed by ssl_ciphers.
const goodCiphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" +
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

// reloadFix ends every fix of a postgresql.conf setting.
const reloadFix = " in postgresql.conf, then SELECT pg_reload_conf()"

// auditServer checks the server's configuration against the guide over conn
// (the verified connection check made) and adds one finding per check. What
// the role may not read is reported as unchecked, naming the privilege.
func (r *checkReport) auditServer(ctx context.Context, conn *pgx.Conn) {
	settings, err := readSettings(ctx, conn)
	if err != nil {
		r.add("audit", sevUnchecked, "not checked: the server settings could not be read: "+err.Error(), "")
		return
	}
	r.auditPasswordEncryption(settings)
	r.auditMinProtocol(settings)
	r.auditOldTLS(ctx)
	r.auditCiphers(ctx, settings)
	r.auditLogConnections(settings)
	r.auditRolePassword(ctx, conn)
	r.auditHBA(ctx, conn)
}

// readSettings returns the pg_settings rows the role may see: a setting
// reserved to pg_read_all_settings is simply absent.
func readSettings(ctx context.Context, conn *pgx.Conn) (map[string]string, error) {
	rows, err := conn.Query(ctx, `SELECT name, setting FROM pg_catalog.pg_settings
		WHERE name IN ('password_encryption', 'ssl_min_protocol_version', 'ssl_ciphers', 'log_connections')`)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	var name, value string
	_, err = pgx.ForEachRow(rows, []any{&name, &value}, func() error {
		out[name] = value
		return nil
	})
	return out, err
}

// auditSetting judges one setting: ok when good(value), otherwise a finding
// of severity sev whose message is problem (with the value for %s).
func (r *checkReport) auditSetting(s map[string]string, name string, good func(string) bool, sev, problem, fix string) {
	switch v, ok := s[name]; {
	case !ok:
		r.add(name, sevUnchecked, name+" not checked (needs pg_read_all_settings)",
			fmt.Sprintf("as superuser, in any database (role membership is cluster-wide): GRANT pg_read_all_settings TO %s", sqlIdent(r.User)))
	case good(v):
		r.add(name, sevOK, name+" is "+v, "")
	default:
		r.add(name, sev, fmt.Sprintf(problem, orDash(v)), fix)
	}
}

func (r *checkReport) auditPasswordEncryption(s map[string]string) {
	r.auditSetting(s, "password_encryption", func(v string) bool { return v == "scram-sha-256" }, sevInsecure,
		"password_encryption is %s: new passwords are stored as MD5 hashes, which log in like the password itself",
		"set password_encryption = 'scram-sha-256'"+reloadFix+", and reset the passwords set since")
}

func (r *checkReport) auditMinProtocol(s map[string]string) {
	r.auditSetting(s, "ssl_min_protocol_version", func(v string) bool { return v == "TLSv1.2" || v == "TLSv1.3" }, sevInsecure,
		"ssl_min_protocol_version is %s: the server accepts TLS versions older than 1.2",
		"set ssl_min_protocol_version = 'TLSv1.2'"+reloadFix)
}

func (r *checkReport) auditLogConnections(s map[string]string) {
	r.auditSetting(s, "log_connections", func(v string) bool { return v == "on" }, sevWarning,
		"log_connections is %s: connection attempts are not logged (only those failing authentication are)",
		"set log_connections = on"+reloadFix+" (and monitor the log for failed attempts)")
}

// auditOldTLS offers the server only TLS 1.0 and 1.1: what it does, whatever
// the setting says (OpenSSL's own policy may refuse what the setting allows).
// This needs no privilege.
func (r *checkReport) auditOldTLS(ctx context.Context) {
	const check = "tls_versions"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, accepted, err := pgwire.TLSHandshake(ctx, r.Addr, tls.VersionTLS10, tls.VersionTLS11, nil)
	switch {
	case err != nil:
		r.add(check, sevUnchecked, "not checked: the TLS 1.0/1.1 probe failed: "+err.Error(), "")
	case accepted:
		r.add(check, sevInsecure, fmt.Sprintf("the server accepted a %s handshake", verify.VersionName(st.Version)),
			"set ssl_min_protocol_version = 'TLSv1.2'"+reloadFix)
	default:
		r.add(check, sevOK, "the server refused TLS 1.0 and TLS 1.1 handshakes", "")
	}
}

// auditCiphers offers the server only weak TLS 1.2 suites: a server that
// takes one would let a client negotiate it. This needs no privilege.
func (r *checkReport) auditCiphers(ctx context.Context, s map[string]string) {
	const check = "ssl_ciphers"
	setting := ""
	if v, ok := s[check]; ok {
		setting = fmt.Sprintf(" (ssl_ciphers = '%s')", v)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	suite, err := pgwire.AcceptedCipherSuite(ctx, r.Addr, pgwire.WeakCipherSuites())
	switch {
	case err != nil:
		r.add(check, sevUnchecked, "not checked: the weak-cipher probe failed: "+err.Error(), "")
	case suite != 0:
		r.add(check, sevWarning, fmt.Sprintf("the server accepts the weak TLS 1.2 cipher suite %s%s", tls.CipherSuiteName(suite), setting),
			"set ssl_ciphers = '"+goodCiphers+"'"+reloadFix)
	default:
		r.add(check, sevOK, "the server refused every weak TLS 1.2 cipher suite offered (RC4, 3DES, CBC-SHA256)"+setting, "")
	}
}

// auditRolePassword says how the role's own password is stored. A SCRAM
// login proves a SCRAM verifier (the server cannot run SCRAM from an MD5
// hash) and an md5 login proves an MD5 hash (the server switches an md5
// pg_hba line to SCRAM for SCRAM verifiers); otherwise pg_authid is read
// where the role may (superuser), without ever fetching the hash.
func (r *checkReport) auditRolePassword(ctx context.Context, conn *pgx.Conn) {
	const check = "role_password"
	fix := rolePasswordFix
	if r.Auth != nil {
		switch r.Auth.Method {
		case "scram-sha-256":
			r.add(check, sevOK, fmt.Sprintf("the password of role %q is stored as a SCRAM-SHA-256 verifier (shown by the SCRAM login)", r.User), "")
			return
		case "md5":
			return // judgeAuth reports it, with or without a login
		}
	}
	var readable bool
	if err := conn.QueryRow(ctx, `SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')`).Scan(&readable); err != nil {
		r.add(check, sevUnchecked, "not checked: "+err.Error(), "")
		return
	}
	if !readable {
		r.add(check, sevUnchecked, fmt.Sprintf("how the password of role %q is stored: not checked (needs superuser, to read pg_authid)", r.User), "")
		return
	}
	var kind string
	err := conn.QueryRow(ctx, `SELECT CASE WHEN rolpassword IS NULL THEN 'none'
		WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram' WHEN rolpassword LIKE 'md5%' THEN 'md5' ELSE 'other' END
		FROM pg_catalog.pg_authid WHERE rolname = current_user`).Scan(&kind)
	switch {
	case err != nil:
		r.add(check, sevUnchecked, "not checked: "+err.Error(), "")
	case kind == "md5":
		r.add(check, sevInsecure, fmt.Sprintf("the password of role %q is stored as an MD5 hash", r.User), fix)
	case kind == "scram":
		r.add(check, sevOK, fmt.Sprintf("the password of role %q is stored as a SCRAM-SHA-256 verifier", r.User), "")
	case kind == "none":
		r.add(check, sevOK, fmt.Sprintf("role %q has no password", r.User), "")
	default:
		r.add(check, sevWarning, fmt.Sprintf("the password of role %q is stored in an unknown form", r.User), fix)
	}
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// sqlIdent quotes a role name for a GRANT statement when it needs quotes.
func sqlIdent(name string) string {
	if plainIdent.MatchString(name) {
		return name
	}
	return pgx.Identifier{name}.Sanitize()
}

// rolePasswordFix is the fix of a role password stored as an MD5 hash.
const rolePasswordFix = "SET password_encryption = 'scram-sha-256', then set the password again (\\password in psql)"

// hbaRule is one row of pg_hba_file_rules.
type hbaRule struct {
	line                          int
	typ, address, netmask, method string
	databases, users              []string
	problem                       string
}

func (h hbaRule) String() string {
	fields := []string{h.typ, strings.Join(h.databases, ","), strings.Join(h.users, ","), h.network(), h.method}
	fields = slices.DeleteFunc(fields, func(f string) bool { return f == "" })
	return fmt.Sprintf("line %d `%s`", h.line, strings.Join(fields, " "))
}

// auditHBA reads pg_hba_file_rules (superuser, or SELECT on the view and
// EXECUTE on its function) and reports lines that accept TCP without TLS
// (host, hostnossl, and hostnogssenc, which takes plaintext too) and weak
// methods.
func (r *checkReport) auditHBA(ctx context.Context, conn *pgx.Conn) {
	const check = "pg_hba"
	var readable bool
	if err := conn.QueryRow(ctx, `SELECT has_table_privilege('pg_catalog.pg_hba_file_rules', 'SELECT')
		AND has_function_privilege('pg_catalog.pg_hba_file_rules()', 'EXECUTE')`).Scan(&readable); err != nil {
		r.add(check, sevUnchecked, "not checked: "+err.Error(), "")
		return
	}
	if !readable {
		role := sqlIdent(r.User)
		r.add(check, sevUnchecked, "pg_hba.conf not checked (needs superuser, or SELECT on pg_hba_file_rules and EXECUTE on pg_hba_file_rules(), "+
			"granted in the database checked)", fmt.Sprintf("as superuser, connected to database %q (the one checked: grants on catalog views "+
			"and functions are per database): GRANT SELECT ON pg_hba_file_rules TO %s; GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO %s",
			r.Database, role, role))
		return
	}
	rules, err := readHBA(ctx, conn)
	if err != nil {
		r.add(check, sevUnchecked, "not checked: "+err.Error(), "")
		return
	}
	bad := 0
	report := func(sev, msg, fix string) { bad++; r.add(check, sev, msg, fix) }
	var covered4, covered6 bool // plaintext from anywhere already rejected
	for _, h := range rules {
		switch {
		case h.problem != "":
			report(sevWarning, fmt.Sprintf("pg_hba.conf line %d has an error and is ignored: %s", h.line, h.problem), "fix the line, then SELECT pg_reload_conf()")
			continue
		case h.typ == "hostnossl" && h.method == "reject" && h.all():
			covered4 = covered4 || h.matchesAll4()
			covered6 = covered6 || h.matchesAll6()
			continue
		case h.method == "reject":
			continue
		}
		if (h.typ == "host" || h.typ == "hostnossl" || h.typ == "hostnogssenc") && !h.shadowed(covered4, covered6) {
			report(sevInsecure, fmt.Sprintf("pg_hba.conf %s accepts TCP connections without TLS", h),
				"make it hostssl, and put `hostnossl all all 0.0.0.0/0 reject` and `hostnossl all all ::/0 reject` before the other host lines")
		}
		switch h.method {
		case "trust":
			sev := sevInsecure
			if h.typ == "local" {
				sev = sevWarning // the unix socket: the OS user is not checked either
			}
			report(sev, fmt.Sprintf("pg_hba.conf %s lets clients in without any authentication", h), "use scram-sha-256 (or peer for local lines)")
		case "password":
			report(sevWarning, fmt.Sprintf("pg_hba.conf %s sends the password in cleartext to the server", h), "use scram-sha-256")
		case "md5":
			report(sevWarning, fmt.Sprintf("pg_hba.conf %s allows md5 authentication", h), "use scram-sha-256 (with password_encryption = 'scram-sha-256')")
		}
	}
	if bad == 0 {
		r.add(check, sevOK, fmt.Sprintf("pg_hba.conf (%d lines) accepts no TCP connection without TLS and no trust, password or md5 method", len(rules)), "")
	}
}

// network is the line's address as pg_hba.conf spells a network, CIDR
// (127.0.0.1/32), when pg_hba_file_rules gives an address and a netmask.
func (h hbaRule) network() string {
	ip, mask := net.ParseIP(h.address), net.ParseIP(h.netmask)
	if ip == nil || mask == nil {
		return strings.TrimSpace(h.address + " " + h.netmask)
	}
	m := net.IPMask(mask)
	if ip.To4() != nil {
		m = net.IPMask(mask.To4())
	}
	ones, bits := m.Size()
	if bits == 0 { // not a contiguous mask: keep it as written
		return h.address + " " + h.netmask
	}
	return fmt.Sprintf("%s/%d", h.address, ones)
}

func readHBA(ctx context.Context, conn *pgx.Conn) ([]hbaRule, error) {
	rows, err := conn.Query(ctx, `SELECT line_number, coalesce(type, ''), coalesce(database, '{}'), coalesce(user_name, '{}'),
		coalesce(address, ''), coalesce(netmask, ''), coalesce(auth_method, ''), coalesce(error, '')
		FROM pg_catalog.pg_hba_file_rules ORDER BY line_number`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (hbaRule, error) {
		var h hbaRule
		err := row.Scan(&h.line, &h.typ, &h.databases, &h.users, &h.address, &h.netmask, &h.method, &h.problem)
		return h, err
	})
}

func (h hbaRule) all() bool {
	return len(h.databases) == 1 && h.databases[0] == "all" && len(h.users) == 1 && h.users[0] == "all"
}

func (h hbaRule) matchesAll4() bool {
	return h.address == "all" || h.address == "0.0.0.0" && h.netmask == "0.0.0.0"
}

func (h hbaRule) matchesAll6() bool {
	return h.address == "all" || h.address == "::" && h.netmask == "::"
}

// shadowed reports whether earlier reject lines already refuse every
// plaintext connection this line could match.
func (h hbaRule) shadowed(covered4, covered6 bool) bool {
	ip := net.ParseIP(h.address)
	switch {
	case ip == nil:
		return covered4 && covered6
	case ip.To4() != nil:
		return covered4
	}
	return covered6
}
