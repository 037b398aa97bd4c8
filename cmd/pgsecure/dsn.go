package main

import (
	"errors"
	"flag"
	"github.com/pgsecure/pgsecure/internal/libpq"
	"net/url"
	"regexp"
	"strings"

	"github.com/pgsecure/pgsecure"
)

// resolvedDSN is the connection string check hands to the builder: the DSN
// argument, completed with the PG* variables for the keys it does not set
// (libpq's precedence), so that everything check uses comes from env.
type resolvedDSN struct {
	dsn     string
	fromEnv map[string]string // connection-string key -> environment variable
}

func resolveDSN(dsn string, env func(string) (string, bool)) resolvedDSN {
	r := resolvedDSN{dsn: dsn, fromEnv: map[string]string{}}
	isURL := strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
	present := map[string]bool{}
	if isURL {
		present = urlKeys(dsn)
	}
	var kv, query []string
	for _, k := range libpq.Keys { // libpq's environment variables (PGPASSWORD is not among them: see check.go)
		v, ok := env(k.Env)
		if k.Env == "" || k.Secret || !ok || v == "" || present[k.Name] {
			continue
		}
		r.fromEnv[k.Name] = k.Env
		if isURL {
			query = append(query, k.Name+"="+strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		} else {
			kv = append(kv, k.Name+"="+libpq.QuoteValue(v))
		}
	}
	switch {
	case isURL && len(query) > 0:
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		r.dsn = dsn + sep + strings.Join(query, "&")
	case !isURL && len(kv) > 0:
		// Later keys win in keyword/value strings, so the DSN's own come last.
		r.dsn = strings.TrimSpace(strings.Join(kv, " ") + " " + dsn)
	}
	return r
}

// urlKeys lists the keys a postgres:// URL sets, in its authority, path or
// query.
func urlKeys(dsn string) map[string]bool {
	out := map[string]bool{}
	_, rest, _ := strings.Cut(dsn, "://")
	rest, query, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	hostport := authority
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		user, _, _ := strings.Cut(authority[:at], ":")
		out["user"] = user != ""
		hostport = authority[at+1:]
	}
	out["host"] = hostport != "" && !strings.HasPrefix(hostport, ":")
	if i := strings.LastIndexByte(hostport, ']'); i >= 0 {
		hostport = hostport[i+1:]
	}
	out["port"] = strings.Contains(hostport, ":")
	out["dbname"] = path != ""
	for _, pair := range strings.Split(query, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if k == "database" {
			k = "dbname"
		}
		if k != "" {
			out[k] = true
		}
	}
	return out
}

// attribute corrects where a refused setting came from when check took it
// from an environment variable, so the message names that variable.
func (r resolvedDSN) attribute(err error) {
	var ce *pgsecure.ConfigError
	if errors.As(err, &ce) && ce.From == "connection string" {
		if name, ok := r.fromEnv[ce.Setting]; ok {
			ce.From = name + " environment variable"
		}
	}
}

var kvPassword = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// dsnSecrets returns the password a DSN holds, in the spellings it may be
// printed in, so output can be scrubbed of it.
func dsnSecrets(dsn string) []string {
	var out []string
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		v := strings.Trim(m[1], "'")
		out = append(out, v, url.QueryEscape(v))
	}
	return out
}

// parseArgs parses fs and allows flags after positional arguments
// ("check DSN --json").
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
