package secrets

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/pgsecure/pgsecure/internal/uriparam"
)

// Opener builds a Source from a parsed URI. Backends register one per scheme
// with Register. Open has already refused a URI carrying a password in its
// user-info part, so u.User holds at most a user name. An Opener's errors
// must follow the Source error contract (wrap ErrInvalid for a malformed URI,
// never echo a secret).
type Opener func(ctx context.Context, u *url.URL) (Source, error)

var registry = struct {
	sync.RWMutex
	m map[string]Opener
}{m: map[string]Opener{}}

// backendImports says which import links the backend of a scheme that is not
// built in, for the error Open returns when it is missing.
var backendImports = map[string]string{
	"vault":      "github.com/pgsecure/pgsecure/secrets/vault",
	"vault+http": "github.com/pgsecure/pgsecure/secrets/vault",
	"awssm":      "github.com/pgsecure/pgsecure/secrets/awssm",
	"rdsiam":     "github.com/pgsecure/pgsecure/secrets/awssm",
	"gcpiam":     "github.com/pgsecure/pgsecure/secrets/gcpiam",
	"azureiam":   "github.com/pgsecure/pgsecure/secrets/azureiam",
}

func init() {
	Register("env", openEnv)
	Register("file", openFile)
}

// Register makes Open accept URIs of scheme (case-insensitive). Backends call
// it from init. It panics when scheme is not a valid URI scheme, when open is
// nil, or when the scheme is already registered: two packages claiming one
// scheme is a build mistake that must not be resolved silently.
func Register(scheme string, open Opener) {
	s := strings.ToLower(scheme)
	if !validScheme(s) {
		panic(fmt.Sprintf("pgsecure/secrets: Register: %q is not a valid URI scheme", scheme))
	}
	if open == nil {
		panic(fmt.Sprintf("pgsecure/secrets: Register(%q): nil Opener", s))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[s]; dup {
		panic(fmt.Sprintf("pgsecure/secrets: Register: scheme %q registered twice", s))
	}
	registry.m[s] = open
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.m))
	for s := range registry.m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Open returns the Source that uri names.
//
// Grammar (scheme names are case-insensitive):
//
//	env:                      PGUSER, PGPASSWORD, PGHOST, PGPORT, PGDATABASE (see Env)
//	env:?prefix=APP_          the same names with the prefix: APP_PGUSER, APP_PGPASSWORD, ...
//	                          (prefix: letters, digits and '_')
//	file:/run/secrets/db      a directory of files or a JSON file (see File);
//	file:///run/secrets/db    the same; the authority must be empty or "localhost"
//	file:/run/secrets/db?user_file=login&password_file=pass
//	                          directory file names: user_file, password_file,
//	                          host_file, port_file, dbname_file (see WithUserFile ...)
//	vault://..., vault+http://...  linked by importing github.com/pgsecure/pgsecure/secrets/vault
//	awssm://..., rdsiam://...      linked by importing github.com/pgsecure/pgsecure/secrets/awssm
//
// The path of a file: URI must be absolute; percent-encode '?', '#' and '%'
// in it. Unknown query parameters, fragments and user names are refused for
// env: and file:. There is no "static:" scheme: a configuration string must
// not hold a password (use Static in code).
//
// For every scheme, a URI whose user-info carries a password
// (scheme://user:password@host) is refused with ErrInvalid; the password is
// not echoed. A scheme nobody registered yields ErrUnknownScheme naming the
// registered schemes and, for a known backend, the import that links it.
// Open's errors never contain the URI's user-info.
func Open(ctx context.Context, uri string) (Source, error) {
	u, err := url.Parse(uri)
	if err != nil {
		// url.Error's text echoes the URI (and so a password), so it is
		// neither quoted nor wrapped.
		return nil, newError(ErrInvalid, "", fmt.Sprintf(
			"secret source URI%s is not a valid URI: check its percent-encoding", schemeHint(uri)), nil)
	}
	if _, has := u.User.Password(); has {
		return nil, newError(ErrInvalid, "", fmt.Sprintf("secret source URI (scheme %q) carries a password in its "+
			"user-info part; configuration must not hold passwords: keep it in the secret backend", u.Scheme), nil)
	}
	if u.Scheme == "" {
		return nil, newError(ErrUnknownScheme, "", "secret source URI has no scheme; write e.g. \"env:\" or "+
			"\"file:/run/secrets/db\" (registered schemes: "+strings.Join(Schemes(), ", ")+")", nil)
	}
	registry.RLock()
	open := registry.m[u.Scheme]
	registry.RUnlock()
	if open == nil {
		return nil, unknownScheme(u.Scheme)
	}
	src, err := open(ctx, u)
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, newError(ErrInvalid, "", fmt.Sprintf("the opener of scheme %q returned no source", u.Scheme), nil)
	}
	return src, nil
}

func unknownScheme(scheme string) error {
	var hint string
	switch imp, known := backendImports[scheme]; {
	case known:
		hint = fmt.Sprintf("the %s backend is not linked into this program: add import _ %q; ", scheme, imp)
	case scheme == "static":
		hint = "static credentials are not offered as a URI because that would put a password in " +
			"configuration: call secrets.Static in code; "
	default:
		known := Schemes()
		for k := range backendImports {
			known = append(known, k)
		}
		if near := uriparam.Nearest(scheme, known); near != "" {
			hint = fmt.Sprintf("did you mean %q? ", near)
		}
	}
	return newError(ErrUnknownScheme, "", fmt.Sprintf("no secret source is registered for scheme %q: %sregistered schemes: %s",
		scheme, hint, strings.Join(Schemes(), ", ")), nil)
}

// schemeHint names the scheme of an unparsable URI when it has a valid one;
// nothing else of the URI is echoed.
func schemeHint(uri string) string {
	if i := strings.IndexByte(uri, ':'); i > 0 && validScheme(strings.ToLower(uri[:i])) {
		return fmt.Sprintf(" (scheme %q)", strings.ToLower(uri[:i]))
	}
	return ""
}

// validScheme reports whether s matches RFC 3986's
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), lower case.
func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func openEnv(_ context.Context, u *url.URL) (Source, error) {
	q, err := builtinQuery(u, "prefix")
	if err != nil {
		return nil, err
	}
	if u.Opaque != "" || u.Host != "" || u.Path != "" {
		return nil, newError(ErrInvalid, "", "an env: URI takes no path; write \"env:\" or \"env:?prefix=APP_\"", nil)
	}
	prefix := q["prefix"]
	for _, r := range prefix {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return nil, newError(ErrInvalid, "", "env: prefix may hold only letters, digits and '_'", nil)
		}
	}
	return newEnv(nil, prefix), nil
}

func openFile(_ context.Context, u *url.URL) (Source, error) {
	q, err := builtinQuery(u, fileParams[:]...)
	if err != nil {
		return nil, err
	}
	if u.Host != "" && u.Host != "localhost" {
		return nil, newError(ErrInvalid, "", fmt.Sprintf("file: URI names host %q; only local files are supported: "+
			"write file:/path or file:///path", u.Host), nil)
	}
	if u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return nil, newError(ErrInvalid, "", "a file: URI needs an absolute path, e.g. file:/run/secrets/db", nil)
	}
	var opts []FileOption
	for f, param := range fileParams {
		if v, ok := q[param]; ok {
			opts = append(opts, withName(fileField(f), v))
		}
	}
	src := File(u.Path, opts...)
	if err := src.(*fileSource).cfg.err; err != nil {
		return nil, err
	}
	return src, nil
}

// builtinQuery checks what the built-in schemes share: no user, no fragment,
// only the allowed query parameters, each at most once.
func builtinQuery(u *url.URL, allowed ...string) (map[string]string, error) {
	if u.User != nil {
		return nil, newError(ErrInvalid, "", fmt.Sprintf("a %s: URI takes no user name", u.Scheme), nil)
	}
	if u.Fragment != "" {
		return nil, newError(ErrInvalid, "", fmt.Sprintf("a %s: URI takes no fragment; percent-encode '#' as %%23", u.Scheme), nil)
	}
	q, err := uriparam.Parse(u, allowed, nil)
	if err != nil {
		return nil, &Error{Kind: ErrInvalid, Source: u.Scheme + " URI", Op: "open", Hint: err.Error()}
	}
	return q, nil
}
