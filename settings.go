package pgsecure

import (
	"fmt"
	"github.com/pgsecure/pgsecure/internal/libpq"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/uriparam"
)

// knownTLSKeys are the ssl*/gss* settings pgsecure understands.
var knownTLSKeys = []string{
	"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslsni", "sslnegotiation",
	"sslcertmode", "ssl_min_protocol_version", "ssl_max_protocol_version", "gssencmode", "sslcrl", "sslcrldir",
}

// consumedParams are settings pgsecure reads itself that pgx would otherwise
// send to the server as run-time parameters.
var consumedParams = []string{"ssl_min_protocol_version", "ssl_max_protocol_version", "gssencmode", "load_balance_hosts", "sslcrl", "sslcrldir"}

var sslmodeWeakness = map[string]string{
	"disable":   "it turns encryption off",
	"allow":     "it tries plaintext first",
	"prefer":    "it falls back to plaintext when TLS fails",
	"require":   "it encrypts but does not verify the server, so an interceptor can read everything",
	"verify-ca": "it does not check that the certificate belongs to the host",
}

// checkSettings refuses every setting that would weaken verify-full or that
// pgsecure cannot honour.
func checkSettings(cs *connSettings) error {
	if s := cs.get("sslmode"); s.set && s.value != "verify-full" {
		why, ok := sslmodeWeakness[s.value]
		if !ok {
			why = "it is not a valid sslmode"
			if near := nearest(s.value, []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}); near == "verify-full" {
				return configErr("sslmode", s.from, fmt.Sprintf("%q is not a valid sslmode; did you mean verify-full?", s.value),
					"write verify-full (with a hyphen), or remove sslmode: pgsecure always uses verify-full")
			} else if near != "" {
				why = fmt.Sprintf("it is not a valid sslmode (did you mean %s? that would be refused too)", near)
			}
		}
		fix := "remove sslmode from the connection string or set sslmode=verify-full"
		if strings.HasSuffix(s.from, "environment variable") {
			fix = "unset PGSSLMODE or set PGSSLMODE=verify-full"
		}
		return configErr("sslmode", s.from, fmt.Sprintf("%q is weaker than verify-full: %s", s.value, why), fix+" (pgsecure always uses verify-full)")
	}
	keys := make([]string, 0, len(cs.raw))
	for k := range cs.raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if lk, known := libpq.Lookup(k); known && lk.Refused != "" {
			continue // reported below with its reason
		}
		if (strings.HasPrefix(k, "ssl") || strings.HasPrefix(k, "gss")) && !slices.Contains(knownTLSKeys, k) {
			return configErr(k, "connection string", "unknown TLS setting (libpq defines no such key; pgx would send it to the server as a run-time parameter)",
				"check the spelling against libpq's list or remove it")
		}
	}
	for _, k := range libpq.Keys {
		if s := cs.get(k.Name); k.Refused != "" && s.set {
			return configErr(k.Name, s.from, "not supported", k.Refused)
		}
	}
	if s := cs.get("gssencmode"); s.set && s.value != "disable" && s.value != "prefer" {
		return configErr("gssencmode", s.from, fmt.Sprintf("%q asks for GSSAPI encryption, which pgsecure does not provide", s.value), "remove it; pgsecure always encrypts with TLS")
	}
	for _, key := range []string{"ssl_min_protocol_version", "ssl_max_protocol_version"} {
		if s := cs.get(key); s.set {
			if _, ok := parseTLSVersion(s.value); !ok {
				return configErr(key, s.from, fmt.Sprintf("%q is not accepted", s.value), "use TLSv1.2 or TLSv1.3 (older versions are insecure)")
			}
		}
	}
	if s := cs.get("sslsni"); s.set && s.value != "0" && s.value != "1" {
		return configErr("sslsni", s.from, fmt.Sprintf("%q is not 0 or 1", s.value), "use sslsni=1 (default) or sslsni=0")
	}
	if s := cs.get("sslnegotiation"); s.set && s.value != "postgres" && s.value != "direct" {
		return configErr("sslnegotiation", s.from, fmt.Sprintf("%q is not valid", s.value), "use postgres (default) or direct (PostgreSQL 17+)")
	}
	if s := cs.get("require_auth"); s.set {
		if _, err := connect.ParseRequireAuth(s.value); err != nil {
			return &ConfigError{Setting: "require_auth", From: s.from, Problem: fmt.Sprintf("%q is not valid", s.value), Err: err,
				Fix: "use a comma-separated list such as scram-sha-256"}
		}
	}
	if s := cs.get("channel_binding"); s.set && !slices.Contains([]string{"disable", "prefer", "require"}, s.value) {
		return configErr("channel_binding", s.from, fmt.Sprintf("%q is not valid", s.value), "use prefer (default) or require")
	}
	if s := cs.get("sslcertmode"); s.set && !slices.Contains([]string{"disable", "allow", "require"}, s.value) {
		return configErr("sslcertmode", s.from, fmt.Sprintf("%q is not valid", s.value), "use disable, allow or require")
	}
	return checkLoadBalance(cs)
}

// stripConsumedParams removes the settings pgsecure consumed from the
// run-time parameters pgx would send, and refuses any TLS-looking parameter
// left over.
func stripConsumedParams(cc *pgx.ConnConfig) error {
	for _, k := range consumedParams {
		delete(cc.RuntimeParams, k)
	}
	for k := range cc.RuntimeParams {
		if strings.HasPrefix(k, "ssl") || strings.HasPrefix(k, "gss") {
			return configErr(k, "", "unknown TLS setting would be sent to the server as a run-time parameter", "remove it")
		}
	}
	return nil
}

// DefaultConnectTimeout limits each host's connection attempt (TCP, TLS,
// authentication and the server-side check) when neither connect_timeout
// nor PGCONNECT_TIMEOUT is set. libpq waits forever by default; a service
// that cannot reach its database should learn it. connect_timeout=0 keeps
// libpq's unlimited wait.
const DefaultConnectTimeout = 10 * time.Second

// applyConsumed applies the libpq settings pgsecure implements itself and
// removes them, and every consumed setting, from the run-time parameters
// pgx would send to the server.
func (cs *connSettings) applyConsumed(cc *pgx.ConnConfig) error {
	if err := stripConsumedParams(cc); err != nil {
		return err
	}
	if s := cs.get("connect_timeout"); !s.set {
		cc.ConnectTimeout = DefaultConnectTimeout
	}
	if v, ok := cc.RuntimeParams["fallback_application_name"]; ok {
		delete(cc.RuntimeParams, "fallback_application_name")
		if _, set := cc.RuntimeParams["application_name"]; !set {
			cc.RuntimeParams["application_name"] = v
		}
	}
	return cs.keepalives(cc)
}

// keepalives implements libpq's keepalives, keepalives_idle,
// keepalives_interval and keepalives_count on the dialler (pgx would send
// them to the server, which rejects them).
func (cs *connSettings) keepalives(cc *pgx.ConnConfig) error {
	ka := net.KeepAliveConfig{Enable: true, Idle: 5 * time.Minute}
	set := false
	for _, k := range []string{"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"} {
		s := cs.get(k)
		delete(cc.RuntimeParams, k)
		if !s.set {
			continue
		}
		set = true
		n, err := strconv.Atoi(s.value)
		if err != nil || n < 0 {
			return configErr(k, s.from, fmt.Sprintf("%q is not a non-negative whole number", s.value), "use a number of seconds (or 0/1 for keepalives)")
		}
		switch k {
		case "keepalives":
			ka.Enable = n != 0
		case "keepalives_idle":
			ka.Idle = time.Duration(n) * time.Second
		case "keepalives_interval":
			ka.Interval = time.Duration(n) * time.Second
		case "keepalives_count":
			ka.Count = n
		}
	}
	if set {
		if !ka.Enable {
			ka = net.KeepAliveConfig{Enable: false}
		}
		d := &net.Dialer{KeepAliveConfig: ka}
		cc.DialFunc = d.DialContext
	}
	return nil
}

// hostAddrs implements libpq's hostaddr (and PGHOSTADDR): the address to
// connect to for each host, while the certificate is still checked against
// the host name. pgx does not implement it and would send it to the server.
func (cs *connSettings) hostAddrs(cc *pgx.ConnConfig) (map[string]string, error) {
	delete(cc.RuntimeParams, "hostaddr")
	s := cs.get("hostaddr")
	if !s.set {
		return nil, nil
	}
	if h := cs.get("host"); !h.set {
		if _, env := cs.env("PGHOST"); !env {
			return nil, configErr("hostaddr", s.from, "hostaddr is set without host",
				"also set host= (or PGHOST) to the name the server certificate carries; hostaddr only says where to connect")
		}
	}
	addrs := strings.Split(s.value, ",")
	entries := hosts(cc)
	if len(addrs) != len(entries) {
		return nil, configErr("hostaddr", s.from, fmt.Sprintf("%d addresses for %d hosts", len(addrs), len(entries)), "give one hostaddr per host, in the same order")
	}
	out := map[string]string{}
	for i, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue // resolve this host normally
		}
		if net.ParseIP(a) == nil {
			return nil, configErr("hostaddr", s.from, fmt.Sprintf("entry %d is not a numeric IP address", i+1), "hostaddr takes addresses such as 192.0.2.10; put names in host=")
		}
		if prev, dup := out[entries[i].host]; dup && prev != a {
			return nil, configErr("hostaddr", s.from, fmt.Sprintf("host %q is listed twice with different addresses", entries[i].host), "list each host once")
		}
		out[entries[i].host] = a
	}
	return out, nil
}

// explainParseError replaces pgx's parse error, which quotes the connection
// string and cannot be relied on to redact every spelling of a password
// (libpq escapes, percent-encoding), by one that names the setting pgx
// refused without quoting any value.
func (cs *connSettings) explainParseError() error {
	const hidden = "pgx cannot parse its value (not shown: values may be passwords)"
	keys := make([]string, 0, len(cs.raw))
	for k := range cs.raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, err := pgconn.ParseConfig(k + "=" + libpq.QuoteValue(cs.raw[k])); err != nil {
			return configErr(k, "connection string", hidden, fmt.Sprintf("check the value of %s against libpq's documentation", k))
		}
	}
	if cs.isURL {
		return configErr("connection string", "", "pgx cannot parse the URL's user, host, port or database part (not shown: it may hold a password)",
			"check the URL's syntax: postgres://user@host:port/dbname, with special characters percent-encoded")
	}
	return configErr("connection string", "", "pgx cannot parse it (not shown: it may hold a password)",
		"check each key=value pair against libpq's documentation; quote values with spaces in single quotes")
}

// nearest returns the candidate closest to s (see uriparam.Nearest).
func nearest(s string, candidates []string) string { return uriparam.Nearest(s, candidates) }
