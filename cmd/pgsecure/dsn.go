package main

import (
	"errors"
	"flag"

	"github.com/pgsecure/pgsecure/internal/libpq"

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
	settings, err := libpq.Parse(dsn)
	if err != nil {
		return r // the builder refuses it, without quoting it
	}
	for k := range settings {
		if !libpq.ValidKey(k) {
			return r // the builder refuses it, naming the key only
		}
	}
	for _, k := range libpq.Keys { // libpq's environment variables (PGPASSWORD is not among them: see check.go)
		v, ok := env(k.Env)
		key := k.Name
		if key == "dbname" {
			key = "database" // as the parser keys it
		}
		if _, present := settings[key]; k.Env == "" || k.Secret || !ok || v == "" || present {
			continue
		}
		settings[key] = v
		r.fromEnv[k.Name] = k.Env
	}
	if len(r.fromEnv) > 0 {
		// The settings as pgsecure's parser read them, completed: the same
		// parser reads the rendering back as exactly these.
		r.dsn = libpq.Render(settings)
	}
	return r
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
