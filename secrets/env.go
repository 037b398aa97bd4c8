package secrets

import (
	"context"
	"os"
)

type envSource struct {
	named
	lookup func(string) (string, bool)
	prefix string
}

// Env returns a Source reading libpq's variables PGUSER, PGPASSWORD, PGHOST,
// PGPORT and PGDATABASE from the process environment at each call (so a
// changed environment is seen at once).
//
// PGUSER and PGPASSWORD are required: an unset or empty one yields an error
// wrapping ErrNotFound that names the variable. A PGPORT that is not a single
// port number (1 to 65535; libpq's comma lists are not supported) yields
// ErrInvalid. PGHOST is passed through as it is, including a list or a unix
// socket directory (pgsecure's builder refuses the latter). Version is empty.
// The source is named "env" (with a prefix, by its URI "env:?prefix=APP_").
func Env() Source { return newEnv(nil, "") }

// EnvFrom is Env reading variables through lookup instead of os.LookupEnv
// (nil means os.LookupEnv).
func EnvFrom(lookup func(string) (string, bool)) Source { return newEnv(lookup, "") }

func newEnv(lookup func(string) (string, bool), prefix string) *envSource {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	name := "env"
	if prefix != "" {
		name = "env:?prefix=" + prefix
	}
	return &envSource{named: named{name}, lookup: lookup, prefix: prefix}
}

// Credentials implements Source.
func (s *envSource) Credentials(ctx context.Context) (Credentials, error) {
	if ctx.Err() != nil {
		return Credentials{}, ctxError(s.name, ctx)
	}
	get := func(v string) string {
		val, _ := s.lookup(s.prefix + v)
		return val
	}
	c := Credentials{User: get("PGUSER"), Password: NewSecret(get("PGPASSWORD")), Host: get("PGHOST"),
		Database: get("PGDATABASE"), Source: s.name}
	for _, v := range []string{"PGUSER", "PGPASSWORD"} {
		if get(v) == "" {
			return Credentials{}, newError(ErrNotFound, s.name, s.prefix+v+" is not set (or empty); set it", nil)
		}
	}
	if p := get("PGPORT"); p != "" {
		port, ok := parsePort(p)
		if !ok {
			return Credentials{}, newError(ErrInvalid, s.name, s.prefix+"PGPORT is not a single port number between 1 and 65535", nil)
		}
		c.Port = port
	}
	return c, nil
}
