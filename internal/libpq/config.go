package libpq

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/uriparam"
	"github.com/pgsecure/pgsecure/internal/x509check"
	"github.com/pgsecure/pgsecure/verify"
)

func configErr(setting, from, problem, fix string) error {
	return &verify.ConfigError{Setting: setting, From: from, Problem: problem, Fix: fix}
}

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

// CheckSettings refuses every setting that would weaken verify-full or that
// pgsecure cannot honour.
func CheckSettings(cs *Settings) error {
	if s := cs.Get("sslmode"); s.Set && s.Value != "verify-full" {
		why, ok := sslmodeWeakness[s.Value]
		if !ok {
			why = "it is not a valid sslmode"
			if near := nearest(s.Value, []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}); near == "verify-full" {
				return configErr("sslmode", s.From, fmt.Sprintf("%q is not a valid sslmode; did you mean verify-full?", s.Value),
					"write verify-full (with a hyphen), or remove sslmode: pgsecure always uses verify-full")
			} else if near != "" {
				why = fmt.Sprintf("it is not a valid sslmode (did you mean %s? that would be refused too)", near)
			}
		}
		fix := "remove sslmode from the connection string or set sslmode=verify-full"
		if strings.HasSuffix(s.From, "environment variable") {
			fix = "unset PGSSLMODE or set PGSSLMODE=verify-full"
		}
		return configErr("sslmode", s.From, fmt.Sprintf("%q is weaker than verify-full: %s", s.Value, why), fix+" (pgsecure always uses verify-full)")
	}
	keys := make([]string, 0, len(cs.Raw))
	for k := range cs.Raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if lk, known := Lookup(k); known && lk.Refused != "" {
			continue // reported below with its reason
		}
		if (strings.HasPrefix(k, "ssl") || strings.HasPrefix(k, "gss")) && !slices.Contains(knownTLSKeys, k) {
			return configErr(k, "connection string", "unknown TLS setting (libpq defines no such key; pgx would send it to the server as a run-time parameter)",
				"check the spelling against libpq's list or remove it")
		}
	}
	for _, k := range Keys {
		if s := cs.Get(k.Name); k.Refused != "" && s.Set {
			return configErr(k.Name, s.From, "not supported", k.Refused)
		}
	}
	if s := cs.Get("gssencmode"); s.Set && s.Value != "disable" && s.Value != "prefer" {
		return configErr("gssencmode", s.From, fmt.Sprintf("%q asks for GSSAPI encryption, which pgsecure does not provide", s.Value), "remove it; pgsecure always encrypts with TLS")
	}
	for _, key := range []string{"ssl_min_protocol_version", "ssl_max_protocol_version"} {
		if s := cs.Get(key); s.Set {
			if _, ok := TLSVersion(s.Value); !ok {
				return configErr(key, s.From, fmt.Sprintf("%q is not accepted", s.Value), "use TLSv1.2 or TLSv1.3 (older versions are insecure)")
			}
		}
	}
	if s := cs.Get("sslsni"); s.Set && s.Value != "0" && s.Value != "1" {
		return configErr("sslsni", s.From, fmt.Sprintf("%q is not 0 or 1", s.Value), "use sslsni=1 (default) or sslsni=0")
	}
	if s := cs.Get("sslnegotiation"); s.Set && s.Value != "postgres" && s.Value != "direct" {
		return configErr("sslnegotiation", s.From, fmt.Sprintf("%q is not valid", s.Value), "use postgres (default) or direct (PostgreSQL 17+)")
	}
	if s := cs.Get("require_auth"); s.Set {
		if _, err := connect.ParseRequireAuth(s.Value); err != nil {
			return &verify.ConfigError{Setting: "require_auth", From: s.From, Problem: fmt.Sprintf("%q is not valid", s.Value), Err: err,
				Fix: "use a comma-separated list such as scram-sha-256"}
		}
	}
	if s := cs.Get("channel_binding"); s.Set && !slices.Contains([]string{"disable", "prefer", "require"}, s.Value) {
		return configErr("channel_binding", s.From, fmt.Sprintf("%q is not valid", s.Value), "use prefer (default) or require")
	}
	if s := cs.Get("sslcertmode"); s.Set && !slices.Contains([]string{"disable", "allow", "require"}, s.Value) {
		return configErr("sslcertmode", s.From, fmt.Sprintf("%q is not valid", s.Value), "use disable, allow or require")
	}
	return CheckLoadBalance(cs)
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

// ApplyConsumed applies the libpq settings pgsecure implements itself and
// removes them, and every consumed setting, from the run-time parameters
// pgx would send to the server.
func (cs *Settings) ApplyConsumed(cc *pgx.ConnConfig) error {
	if err := stripConsumedParams(cc); err != nil {
		return err
	}
	if s := cs.Get("connect_timeout"); !s.Set {
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
func (cs *Settings) keepalives(cc *pgx.ConnConfig) error {
	ka := net.KeepAliveConfig{Enable: true, Idle: 5 * time.Minute}
	set := false
	for _, k := range []string{"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"} {
		s := cs.Get(k)
		delete(cc.RuntimeParams, k)
		if !s.Set {
			continue
		}
		set = true
		n, err := strconv.Atoi(s.Value)
		if err != nil || n < 0 {
			return configErr(k, s.From, fmt.Sprintf("%q is not a non-negative whole number", s.Value), "use a number of seconds (or 0/1 for keepalives)")
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

// HostAddrs implements libpq's hostaddr (and PGHOSTADDR): the address to
// connect to for each host, while the certificate is still checked against
// the host name. pgx does not implement it and would send it to the server.
func (cs *Settings) HostAddrs(cc *pgx.ConnConfig) (map[string]string, error) {
	delete(cc.RuntimeParams, "hostaddr")
	s := cs.Get("hostaddr")
	if !s.Set {
		return nil, nil
	}
	if h := cs.Get("host"); !h.Set {
		if _, env := cs.Env("PGHOST"); !env {
			return nil, configErr("hostaddr", s.From, "hostaddr is set without host",
				"also set host= (or PGHOST) to the name the server certificate carries; hostaddr only says where to connect")
		}
	}
	addrs := strings.Split(s.Value, ",")
	entries := Hosts(cc)
	if len(addrs) != len(entries) {
		return nil, configErr("hostaddr", s.From, fmt.Sprintf("%d addresses for %d hosts", len(addrs), len(entries)), "give one hostaddr per host, in the same order")
	}
	out := map[string]string{}
	for i, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue // resolve this host normally
		}
		if net.ParseIP(a) == nil {
			return nil, configErr("hostaddr", s.From, fmt.Sprintf("entry %d is not a numeric IP address", i+1), "hostaddr takes addresses such as 192.0.2.10; put names in host=")
		}
		if prev, dup := out[entries[i].Host]; dup && prev != a {
			return nil, configErr("hostaddr", s.From, fmt.Sprintf("host %q is listed twice with different addresses", entries[i].Host), "list each host once")
		}
		out[entries[i].Host] = a
	}
	return out, nil
}

// ExplainParseError replaces pgx's parse error, which quotes the connection
// string and cannot be relied on to redact every spelling of a password
// (libpq escapes, percent-encoding), by one that names the setting pgx
// refused without quoting any value.
func (cs *Settings) ExplainParseError() error {
	const hidden = "pgx cannot parse its value (not shown: values may be passwords)"
	keys := make([]string, 0, len(cs.Raw))
	for k := range cs.Raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, err := pgconn.ParseConfig(k + "=" + QuoteValue(cs.Raw[k])); err != nil {
			return configErr(k, "connection string", hidden, fmt.Sprintf("check the value of %s against libpq's documentation", k))
		}
	}
	if cs.IsURL {
		return configErr("connection string", "", "pgx cannot parse the URL's user, host, port or database part (not shown: it may hold a password)",
			"check the URL's syntax: postgres://user@host:port/dbname, with special characters percent-encoded")
	}
	return configErr("connection string", "", "pgx cannot parse it (not shown: it may hold a password)",
		"check each key=value pair against libpq's documentation; quote values with spaces in single quotes")
}

// nearest returns the candidate closest to s (see uriparam.Nearest).
func nearest(s string, candidates []string) string { return uriparam.Nearest(s, candidates) }

// noUnixSockets refuses unix-socket hosts: they cannot carry TLS.
func NoUnixSockets(cc *pgx.ConnConfig) error {
	for _, h := range Hosts(cc) {
		if IsUnixSocket(h.Host) {
			return UnixSocketError(h.Host, "", "connect over TCP: set host= (or PGHOST) to the server's name as it appears in its certificate")
		}
	}
	return nil
}

// HostEntry is one place pgx may connect to, with its TLS configuration.
type HostEntry struct {
	Host string
	Port uint16
	TLS  **tls.Config
}

func Hosts(cc *pgx.ConnConfig) []HostEntry {
	out := []HostEntry{{Host: cc.Host, Port: cc.Port, TLS: &cc.TLSConfig}}
	for _, fb := range cc.Fallbacks {
		out = append(out, HostEntry{Host: fb.Host, Port: fb.Port, TLS: &fb.TLSConfig})
	}
	return out
}

// UnixSocketError refuses a unix-socket host, saying where it came from.
func UnixSocketError(host, from, fix string) error {
	return configErr("host", from, fmt.Sprintf("%q is a unix-socket directory, which cannot carry TLS", host), fix)
}

func IsUnixSocket(host string) bool {
	return filepath.IsAbs(host) || (len(host) > 0 && host[0] == '@')
}

func SamePath(a, b string) bool {
	ca, err1 := filepath.Abs(a)
	cb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && ca == cb
}

func FileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// NumericLookup resolves the IPv4 spellings libpq's getaddrinfo reads without
// DNS ("192.000.002.001", "127.1", "0x7f.0.0.1": see
// x509check.NumericIPv4) to their address, as libpq dials them; every other
// host goes to next. Go's resolver would send these names to DNS and fail
// with "no such host". The certificate is still checked against the host as
// written (x509check.MatchHostname reads it as the same address).
func NumericLookup(next pgconn.LookupFunc) pgconn.LookupFunc {
	return func(ctx context.Context, host string) ([]string, error) {
		if a, ok := x509check.NumericIPv4(host); ok {
			return []string{a.String()}, nil
		}
		return next(ctx, host)
	}
}

// TLSVersion reads libpq's ssl_min_protocol_version spellings.
func TLSVersion(s string) (uint16, bool) {
	switch strings.ToLower(s) {
	case "tlsv1.2":
		return tls.VersionTLS12, true
	case "tlsv1.3":
		return tls.VersionTLS13, true
	}
	return 0, false
}
