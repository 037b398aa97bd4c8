package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pgsecure/pgsecure/internal/files"
	"github.com/pgsecure/pgsecure/internal/refresh"
)

// fileField indexes the credential fields a secret directory may hold.
type fileField int

const (
	fieldUser fileField = iota
	fieldPassword
	fieldHost
	fieldPort
	fieldDatabase
	numFields
)

// fileParams are the file: URI query parameters naming each field's file.
var fileParams = [numFields]string{"user_file", "password_file", "host_file", "port_file", "dbname_file"}

// defaultFileNames are the files looked for in a directory, first match wins.
var defaultFileNames = [numFields][]string{{"username", "user"}, {"password"}, {"host"}, {"port"}, {"dbname", "database"}}

// A FileOption configures File.
type FileOption func(*fileConfig)

type fileConfig struct {
	names  [numFields][]string
	custom bool // a name option was given
	logger *slog.Logger
	err    error // the first invalid option, reported by Credentials
}

func withName(f fileField, name string) FileOption {
	return func(c *fileConfig) {
		if name == "" || name == "." || name == ".." || filepath.Base(name) != name || strings.ContainsRune(name, 0) {
			if c.err == nil {
				c.err = newError(ErrInvalid, "", fileParams[f]+" is not a plain file name inside the secret directory "+
					"(no '/', not empty, not \".\" or \"..\"); its value is not repeated here", nil)
			}
			return
		}
		c.names[f] = []string{name}
		c.custom = true
	}
}

// WithUserFile names the directory's user file (default "username", then "user").
func WithUserFile(name string) FileOption { return withName(fieldUser, name) }

// WithPasswordFile names the directory's password file (default "password").
func WithPasswordFile(name string) FileOption { return withName(fieldPassword, name) }

// WithHostFile names the directory's optional host file (default "host").
func WithHostFile(name string) FileOption { return withName(fieldHost, name) }

// WithPortFile names the directory's optional port file (default "port").
func WithPortFile(name string) FileOption { return withName(fieldPort, name) }

// WithDatabaseFile names the directory's optional database file (default
// "dbname", then "database").
func WithDatabaseFile(name string) FileOption { return withName(fieldDatabase, name) }

// WithLogger sets where File reports a malformed rewrite it skipped (once
// per rewrite, at Warn, without values). The default discards.
func WithLogger(l *slog.Logger) FileOption { return func(c *fileConfig) { c.logger = l } }

type fileSource struct {
	named
	path string
	cfg  fileConfig

	mu      sync.Mutex
	stamp   files.Stamp // change stamp of what was last parsed; "" if nothing
	good    Credentials // last good credentials; valid if hasGood
	hasGood bool
	bad     error  // the parse error for stamp when there is no last good
	gen     uint64 // credential generation, reported as Version

	rejected atomic.Pointer[Credentials] // the database rejected these; the next call waits for newer ones
}

// File returns a Source reading path, which is either
//
//   - a directory of one-value files, as Kubernetes and Docker mount secrets:
//     "username" (or "user") and "password" required; "host", "port" and
//     "dbname" (or "database") optional. One trailing newline (\n or \r\n,
//     repeated) is trimmed from each. Names can be changed with WithUserFile
//     and friends; or
//   - a JSON file in the Amazon RDS secret shape (see ParseJSON).
//
// Every call checks cheaply whether the secret changed (modification time and
// size of the files, and the file each resolves to through Kubernetes'
// "..data" symlink, which it swaps atomically) and re-reads only then, so a
// rotation is picked up by the next call. The source therefore manages its
// own lifetime (Cached does not wrap it) and reports that it rotates. After
// the database rejected its credentials (Invalidate), the next call waits a
// few seconds for the rotation to write new ones (the database password is
// often changed before the mounted secret is updated).
// Version counts credential generations: it changes exactly when the
// credentials read change.
//
// A rewrite that cannot be parsed (a JSON file caught mid-write, an empty
// file) does not replace good credentials: File keeps returning the last good
// ones and logs one warning per such rewrite. With no last good credentials
// it returns an error wrapping ErrInvalid. A missing path or file wraps
// ErrNotFound; other I/O errors wrap ErrUnavailable; both are re-checked on
// every call. Errors never contain file contents.
//
// A rewrite that keeps both size and modification time (filesystems with
// coarse timestamps) is not noticed.
func File(path string, opts ...FileOption) Source {
	cfg := fileConfig{names: defaultFileNames}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	s := &fileSource{named: named{"file:" + path}, path: path, cfg: cfg}
	if e, ok := cfg.err.(*Error); ok {
		e.Source = s.name
	}
	return s
}

// Credentials implements Source.
func (s *fileSource) Credentials(ctx context.Context) (Credentials, error) {
	rejected := s.rejected.Swap(nil)
	if rejected == nil {
		return s.current(ctx)
	}
	return refresh.AwaitNewer(ctx, refresh.Rand, s.current, func(c Credentials) bool { return sameGeneration(c, *rejected) })
}

// Invalidate implements Invalidator: when the next call would return the
// rejected credentials again, it re-checks the secret with jittered backoff
// (from 100 ms doubling, up to about 6 s, within the caller's deadline) until the
// rotation writes new ones, then returns what it has.
func (s *fileSource) Invalidate(rejected Credentials) { s.rejected.Store(&rejected) }

func (s *fileSource) current(ctx context.Context) (Credentials, error) {
	if ctx.Err() != nil {
		return Credentials{}, ctxError(s.name, ctx)
	}
	if s.cfg.err != nil {
		return Credentials{}, s.cfg.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stamp, isDir, err := s.changeStamp()
	if err != nil {
		return Credentials{}, err
	}
	if stamp == s.stamp {
		return s.good, s.bad
	}
	c, err := s.read(isDir)
	if err != nil && !errors.Is(err, ErrInvalid) {
		return Credentials{}, err // absence and I/O errors: not remembered, re-checked next call
	}
	s.stamp = stamp
	if err != nil {
		if !s.hasGood {
			s.bad = err
			return Credentials{}, err
		}
		s.bad = nil
		s.cfg.logger.Warn("secret rewritten with unusable content; still using the last good credentials",
			"source", s.name, "version", s.good.Version, "error", err.Error())
		return s.good, nil
	}
	c.Source, c.Version = s.name, s.good.Version
	if !s.hasGood || !c.Equal(s.good) {
		s.gen++
		c.Version = strconv.FormatUint(s.gen, 10)
	}
	s.good, s.hasGood, s.bad = c, true, nil
	return c, nil
}

// ManagesLifetime implements LifetimeManager: File re-reads only what
// changed, so a cache in front of it would only delay rotations.
func (s *fileSource) ManagesLifetime() bool { return true }

// Rotates implements Rotator.
func (s *fileSource) Rotates() bool { return true }

// ParseJSON parses a secret in the Amazon RDS JSON shape:
//
//	{"username": "app", "password": "...", "host": "db.example.com", "port": 5432, "dbname": "app"}
//
// "user" is accepted for "username" and "database" for "dbname" (both present
// must agree); port may be a number or a string; other fields (engine, ...)
// are ignored; null counts as absent. username and password are required and
// must be non-empty strings. Errors wrap ErrInvalid and never contain any part
// of the input: a syntax error is reported by byte offset only.
func ParseJSON(b []byte) (Credentials, error) { return parseJSON(b, "JSON secret") }

func parseJSON(b []byte, source string) (Credentials, error) {
	invalid := func(format string, args ...any) (Credentials, error) {
		return Credentials{}, newError(ErrInvalid, source, fmt.Sprintf(format, args...), nil)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		// The json errors quote pieces of the input, so they are not wrapped.
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
			return invalid("is not valid JSON (syntax error at byte offset %d); a file caught mid-write is re-read when it changes", se.Offset)
		}
		return invalid("is not a JSON object")
	}
	if m == nil {
		return invalid("is not a JSON object")
	}
	var c Credentials
	var password string
	var err error
	fields := []struct {
		dst  *string
		keys []string
	}{{&c.User, []string{"username", "user"}}, {&password, []string{"password"}},
		{&c.Host, []string{"host"}}, {&c.Database, []string{"dbname", "database"}}}
	for _, f := range fields {
		if *f.dst, err = jsonString(m, f.keys...); err != nil {
			return invalid("%s", err.Error())
		}
	}
	if c.Port, err = jsonPort(m["port"]); err != nil {
		return invalid("%s", err.Error())
	}
	if c.User == "" {
		return invalid("field \"username\" is missing or empty")
	}
	if password == "" {
		return invalid("field \"password\" is missing or empty")
	}
	c.Password = NewSecret(password)
	return c, nil
}

// jsonString returns the string under the first of keys present; when more
// than one is present they must agree. Errors name keys, never values.
func jsonString(m map[string]json.RawMessage, keys ...string) (string, error) {
	var out, from string
	for _, k := range keys {
		raw, ok := m[k]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", fmt.Errorf("field %q must be a JSON string", k)
		}
		if from != "" && s != out {
			return "", fmt.Errorf("fields %q and %q disagree; keep one", from, k)
		}
		if from == "" {
			out, from = s, k
		}
	}
	return out, nil
}

func jsonPort(raw json.RawMessage) (uint16, error) {
	if raw == nil || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return 0, errors.New("field \"port\" must be a number or a string")
		}
		s = n.String()
	} else if s == "" {
		return 0, nil
	}
	p, ok := parsePort(s)
	if !ok {
		return 0, errors.New("field \"port\" is not a port number between 1 and 65535")
	}
	return p, nil
}

// parsePort parses a decimal TCP port, 1 to 65535.
func parsePort(s string) (uint16, bool) {
	p, err := strconv.ParseUint(s, 10, 16)
	return uint16(p), err == nil && p != 0
}
