package pgsecure

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// knownTLSKeys are the ssl*/gss* settings pgsecure understands.
var knownTLSKeys = []string{
	"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslsni", "sslnegotiation",
	"sslcertmode", "ssl_min_protocol_version", "ssl_max_protocol_version", "gssencmode",
}

// consumedParams are settings pgsecure reads itself that pgx would otherwise
// send to the server as run-time parameters.
var consumedParams = []string{"ssl_min_protocol_version", "ssl_max_protocol_version", "gssencmode", "load_balance_hosts"}

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
		if _, refused := refusedKeys[k]; refused {
			continue // reported below with its reason
		}
		if (strings.HasPrefix(k, "ssl") || strings.HasPrefix(k, "gss")) && !slices.Contains(knownTLSKeys, k) {
			return configErr(k, "connection string", "unknown TLS setting (libpq defines no such key; pgx would send it to the server as a run-time parameter)",
				"check the spelling against libpq's list or remove it")
		}
	}
	for key, why := range refusedKeys {
		if s := cs.get(key); s.set {
			return configErr(key, s.from, "not supported", why)
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
		if _, err := parseRequireAuth(s.value); err != nil {
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

// secrets returns the secret values the connection string or environment
// hold, so messages that quote pgx can be scrubbed of them.
func (cs *connSettings) secrets() []string {
	var out []string
	for _, k := range []string{"password", "sslpassword"} {
		if v := cs.raw[k]; v != "" {
			out = append(out, v, url.QueryEscape(v), url.PathEscape(v))
		}
	}
	if v, ok := cs.env("PGPASSWORD"); ok && v != "" {
		out = append(out, v)
	}
	if pw := cs.userinfoPassword; pw != "" {
		out = append(out, pw)
		if dec, err := url.PathUnescape(pw); err == nil {
			out = append(out, dec)
		}
	}
	return out
}

// scrub replaces every occurrence of the given secrets in msg.
func scrub(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 1 {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}
