package pgsecure

import (
	"github.com/pgsecure/pgsecure/internal/libpq"
	"os"
	"strings"
)

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
		cs.raw, err = libpq.ParseURLQuery(connString)
		cs.userinfoPassword = libpq.UserinfoPassword(connString)
	} else {
		cs.raw, err = libpq.ParseKeywordValue(connString)
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
	if k, ok := libpq.Lookup(key); ok && k.Env != "" {
		if v, ok := cs.env(k.Env); ok && v != "" {
			return setting{value: v, from: k.Env + " environment variable", set: true}
		}
	}
	return setting{}
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
