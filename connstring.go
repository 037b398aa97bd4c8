package pgsecure

import (
	"fmt"
	"maps"
	"os"

	"github.com/pgsecure/pgsecure/internal/libpq"
	"github.com/pgsecure/pgsecure/internal/uriparam"
)

// setting is one effective libpq value and where it came from.
type setting struct {
	value string
	from  string // "connection string", "PGSSLMODE environment variable", or "" when unset
	set   bool
}

// connSettings is the connection string's key/value view plus the
// environment, for the keys pgsecure decides on itself. raw is libpq.Parse's
// reading, which is pgx's own; pgx is handed raw rendered back (forPgx), so
// what pgsecure checks is what pgx uses.
type connSettings struct {
	raw   map[string]string
	isURL bool
	env   func(string) (string, bool)
}

func parseConnSettings(connString string, env func(string) (string, bool)) (*connSettings, error) {
	cs := &connSettings{env: env, isURL: libpq.IsURL(connString)}
	var err error
	cs.raw, err = libpq.Parse(connString)
	if err != nil {
		// The parser never quotes the input, so the message cannot carry a password.
		return nil, &ConfigError{Setting: "connection string", Problem: "cannot be parsed", Err: err,
			Fix: `use "postgres://user@host:port/db?key=value" or "host=... dbname=..." (values with spaces in single quotes)`}
	}
	for k := range cs.raw {
		if !libpq.ValidKey(k) {
			return nil, configErr("connection string", "", fmt.Sprintf("%s contains characters no libpq key or server parameter has", uriparam.Name(k)),
				"use only letters, digits, '_', '.' and '-' in keys; percent-encode special characters in values only")
		}
	}
	return cs, nil
}

// get returns the effective value of key: the connection string first, then
// its environment variable (libpq's precedence).
func (cs *connSettings) get(key string) setting {
	if v, ok := cs.raw[canonicalKey(key)]; ok {
		return setting{value: v, from: "connection string", set: true}
	}
	if k, ok := libpq.Lookup(key); ok && k.Env != "" {
		if v, ok := cs.env(k.Env); ok && v != "" {
			return setting{value: v, from: k.Env + " environment variable", set: true}
		}
	}
	return setting{}
}

// canonicalKey is the key under which pgx (and so raw) holds a setting.
func canonicalKey(k string) string {
	if k == "dbname" {
		return "database"
	}
	return k
}

// forPgx returns the connection string to hand to pgx: the settings pgsecure
// read and checked, in keyword/value form with every value quoted (so pgx
// cannot read them differently), and every TLS key neutralised, so pgx
// neither reads certificate files (including its silent ~/.postgresql
// defaults) nor builds a plaintext fallback. pgsecure installs its own TLS
// configuration on every host after parsing, and refuses any host left
// without it.
func (cs *connSettings) forPgx() string {
	settings := maps.Clone(cs.raw)
	for k, v := range map[string]string{"sslmode": "verify-full", "sslrootcert": "", "sslcert": "", "sslkey": "", "sslpassword": "", "sslnegotiation": ""} {
		settings[k] = v
	}
	return libpq.Render(settings)
}

func osEnv(name string) (string, bool) { return os.LookupEnv(name) }
