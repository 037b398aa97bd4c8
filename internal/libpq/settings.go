package libpq

import (
	"fmt"
	"maps"
	"os"

	"github.com/pgsecure/pgsecure/internal/uriparam"
	"github.com/pgsecure/pgsecure/verify"
)

// Setting is one effective libpq value and where it came from.
type Setting struct {
	Value string
	From  string // "connection string", "PGSSLMODE environment variable", or "" when unset
	Set   bool
}

// Settings is the connection string's key/value view plus the environment,
// for the keys pgsecure decides on itself. Raw is Parse's reading, which
// is pgx's own; pgx is handed Raw rendered back (ForPgx), so what pgsecure
// checks is what pgx uses.
type Settings struct {
	Raw   map[string]string
	IsURL bool
	env   func(string) (string, bool)
}

// ParseSettings reads connString; env looks up environment variables
// (OSEnv, or a test's). The error is a *verify.ConfigError that never
// quotes the input.
func ParseSettings(connString string, env func(string) (string, bool)) (*Settings, error) {
	cs := &Settings{env: env, IsURL: IsURL(connString)}
	var err error
	cs.Raw, err = Parse(connString)
	if err != nil {
		// The parser never quotes the input, so the message cannot carry a password.
		return nil, &verify.ConfigError{Setting: "connection string", Problem: "cannot be parsed", Err: err,
			Fix: `use "postgres://user@host:port/db?key=value" or "host=... dbname=..." (values with spaces in single quotes)`}
	}
	for k := range cs.Raw {
		if !ValidKey(k) {
			return nil, &verify.ConfigError{Setting: "connection string", Problem: fmt.Sprintf("%s contains characters no libpq key or server parameter has", uriparam.Name(k)),
				Fix: "use only letters, digits, '_', '.' and '-' in keys; percent-encode special characters in values only"}
		}
	}
	return cs, nil
}

// Get returns the effective value of key: the connection string first,
// then its environment variable (libpq's precedence).
func (cs *Settings) Get(key string) Setting {
	if v, ok := cs.Raw[canonicalKey(key)]; ok {
		return Setting{Value: v, From: "connection string", Set: true}
	}
	if k, ok := Lookup(key); ok && k.Env != "" {
		if v, ok := cs.env(k.Env); ok && v != "" {
			return Setting{Value: v, From: k.Env + " environment variable", Set: true}
		}
	}
	return Setting{}
}

// Env looks up an environment variable as the settings do.
func (cs *Settings) Env(name string) (string, bool) { return cs.env(name) }

// ForPgx returns the connection string to hand to pgx: the settings
// pgsecure read and checked, in keyword/value form with every value quoted
// (so pgx cannot read them differently), and every TLS key neutralised, so
// pgx neither reads certificate files (including its silent ~/.postgresql
// defaults) nor builds a plaintext fallback. pgsecure installs its own TLS
// configuration on every host after parsing, and refuses any host left
// without it.
func (cs *Settings) ForPgx() string {
	settings := maps.Clone(cs.Raw)
	for k, v := range map[string]string{"sslmode": "verify-full", "sslrootcert": "", "sslcert": "", "sslkey": "", "sslpassword": "", "sslnegotiation": ""} {
		settings[k] = v
	}
	return Render(settings)
}

// OSEnv looks up the process environment.
func OSEnv(name string) (string, bool) { return os.LookupEnv(name) }
