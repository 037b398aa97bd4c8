package pgsecure

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// envFor maps the libpq keys pgsecure reads itself to their environment
// variables (libpq's names).
var envFor = map[string]string{
	"sslmode":                  "PGSSLMODE",
	"sslrootcert":              "PGSSLROOTCERT",
	"sslcert":                  "PGSSLCERT",
	"sslkey":                   "PGSSLKEY",
	"sslpassword":              "PGSSLPASSWORD",
	"sslsni":                   "PGSSLSNI",
	"sslnegotiation":           "PGSSLNEGOTIATION",
	"sslcertmode":              "PGSSLCERTMODE",
	"ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
	"ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
	"sslcrl":                   "PGSSLCRL",
	"sslcrldir":                "PGSSLCRLDIR",
	"sslcompression":           "PGSSLCOMPRESSION",
	"requiressl":               "PGREQUIRESSL",
	"gssencmode":               "PGGSSENCMODE",
	"service":                  "PGSERVICE",
	"channel_binding":          "PGCHANNELBINDING",
	"require_auth":             "PGREQUIREAUTH",
	"target_session_attrs":     "PGTARGETSESSIONATTRS",
	"connect_timeout":          "PGCONNECT_TIMEOUT",
	"hostaddr":                 "PGHOSTADDR",
	"host":                     "PGHOST",
	"requirepeer":              "PGREQUIREPEER",
	"gssdelegation":            "PGGSSDELEGATION",
	"load_balance_hosts":       "PGLOADBALANCEHOSTS",
}

// refusedKeys are libpq settings pgsecure will not accept, with the reason.
var refusedKeys = map[string]string{
	"sslcrl":         "certificate revocation lists are not checked by pgsecure, so accepting this would promise a check that never happens; remove it and rotate the server certificate to a new CA or use PinSPKI to reject a revoked key",
	"sslcrldir":      "certificate revocation lists are not checked by pgsecure; remove it (see sslcrl)",
	"sslcompression": "TLS compression is insecure (CRIME) and unsupported; remove it",
	"requiressl":     "requiressl is a deprecated alias for sslmode=require; remove it (pgsecure always uses verify-full)",
	"ssl":            "ssl=true is an alias for sslmode=require; remove it (pgsecure always uses verify-full)",
	"service":        "pg_service.conf entries are not read because settings there would bypass pgsecure's checks; put the service's settings in the connection string",
	"sslkeylogfile":  "writing TLS session keys to a file defeats encryption; remove it",
	"gsslib":         "GSSAPI is not supported by pgsecure; remove it",
	"gssdelegation":  "GSSAPI is not supported by pgsecure; remove it",
	"requirepeer":    "requirepeer applies only to unix-socket connections, which pgsecure never makes; remove it",
	"tcp_user_timeout": "pgx does not implement tcp_user_timeout (it would be sent to the server, which rejects it); remove it, " +
		"and use keepalives_idle/keepalives_interval/keepalives_count or connect_timeout",
	"scram_client_key":    "pre-computed SCRAM keys are not supported; remove it and give the password",
	"scram_server_key":    "pre-computed SCRAM keys are not supported; remove it and give the password",
	"oauth_issuer":        "OAuth authentication is not supported by pgsecure; remove it",
	"oauth_client_id":     "OAuth authentication is not supported by pgsecure; remove it",
	"oauth_client_secret": "OAuth authentication is not supported by pgsecure; remove it",
	"oauth_scope":         "OAuth authentication is not supported by pgsecure; remove it",
}

// setting is one effective libpq value and where it came from.
type setting struct {
	value string
	from  string // "connection string", "PGSSLMODE environment variable", or "" when unset
	set   bool
}

// connSettings is the connection string's key/value view plus the
// environment, for the keys pgsecure decides on itself.
type connSettings struct {
	raw              map[string]string
	isURL            bool
	userinfoPassword string
	env              func(string) (string, bool)
}

func parseConnSettings(connString string, env func(string) (string, bool)) (*connSettings, error) {
	cs := &connSettings{env: env}
	var err error
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		cs.isURL = true
		cs.raw, err = parseURLQuery(connString)
		cs.userinfoPassword = userinfoPassword(connString)
	} else {
		cs.raw, err = parseKeywordValue(connString)
	}
	if err != nil {
		// The parsers never quote values, so the message cannot carry a password.
		return nil, &ConfigError{Setting: "connection string", Problem: "cannot be parsed", Err: err,
			Fix: `use "postgres://user@host:port/db?key=value" or "host=... dbname=..." (values with spaces in single quotes)`}
	}
	return cs, nil
}

// get returns the effective value of key: the connection string first, then
// its environment variable (libpq's precedence).
func (cs *connSettings) get(key string) setting {
	if v, ok := cs.raw[key]; ok {
		return setting{value: v, from: "connection string", set: true}
	}
	if name, ok := envFor[key]; ok {
		if v, ok := cs.env(name); ok && v != "" {
			return setting{value: v, from: name + " environment variable", set: true}
		}
	}
	return setting{}
}

// canonicalKey mirrors pgx: dbname is an alias of database.
func canonicalKey(k string) string {
	if k == "dbname" {
		return "database"
	}
	return k
}

// parseURLQuery returns the query parameters of a postgres:// URL, with
// libpq's rules: '&'-separated, one '=', percent-decoded, last one wins.
func parseURLQuery(s string) (map[string]string, error) {
	out := map[string]string{}
	_, query, found := strings.Cut(s, "?")
	if !found || query == "" {
		return out, nil
	}
	for _, pair := range strings.Split(query, "&") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, errors.New(`a query parameter has no "="`)
		}
		key, err := url.PathUnescape(k)
		if err != nil {
			return nil, errors.New("a query parameter name is not valid percent-encoding")
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("the value of %q is not valid percent-encoding", key)
		}
		out[canonicalKey(strings.TrimSpace(key))] = strings.TrimSpace(val)
	}
	return out, nil
}

// parseKeywordValue parses libpq's "key=value key2='quoted value'" form.
func parseKeywordValue(s string) (map[string]string, error) {
	out := map[string]string{}
	const space = " \t\n\r\v\f"
	s = strings.TrimLeft(s, space)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, errors.New(`expected "key=value"`)
		}
		key := strings.Trim(s[:eq], space)
		if key == "" || strings.ContainsAny(key, space) {
			return nil, fmt.Errorf("invalid key %q", key)
		}
		s = strings.TrimLeft(s[eq+1:], space)
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			i, closed := 1, false
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					val.WriteByte(s[i])
					continue
				}
				if s[i] == '\'' {
					closed = true
					break
				}
				val.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted value for %q", key)
			}
			s = s[i+1:]
		} else {
			i := 0
			for ; i < len(s) && !strings.ContainsRune(space, rune(s[i])); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[i:]
		}
		out[canonicalKey(key)] = val.String()
		s = strings.TrimLeft(s, space)
	}
	return out, nil
}

// forPgx returns the connection string to hand to pgx: the caller's string
// with every TLS key neutralised, so pgx neither reads certificate files
// (including its silent ~/.postgresql defaults) nor builds a plaintext
// fallback. pgsecure installs its own TLS configuration on every host after
// parsing, and refuses any host left without it.
func (cs *connSettings) forPgx(connString string) string {
	neutral := []string{"sslmode=verify-full", "sslrootcert=", "sslcert=", "sslkey=", "sslpassword=", "sslnegotiation="}
	if cs.isURL {
		sep := "&"
		if !strings.Contains(connString, "?") {
			sep = "?"
		}
		return connString + sep + strings.Join(neutral, "&")
	}
	for i, kv := range neutral {
		if strings.HasSuffix(kv, "=") {
			neutral[i] = kv + "''"
		}
	}
	return connString + " " + strings.Join(neutral, " ")
}

func osEnv(name string) (string, bool) { return os.LookupEnv(name) }

// userinfoPassword returns the password part of a URL's userinfo (raw).
func userinfoPassword(s string) string {
	_, rest, _ := strings.Cut(s, "://")
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}
