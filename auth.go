package pgsecure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrInsecureAuth is wrapped when the server asks for an authentication
// method the policy does not allow (by default anything but
// scram-sha-256): the connection is closed before the password, or a hash
// of it, is sent.
var ErrInsecureAuth = errors.New("pgsecure: authentication method not allowed")

// Authentication methods, in libpq's require_auth spelling.
const (
	AuthSCRAM    = "scram-sha-256"
	AuthMD5      = "md5"
	AuthPassword = "password"
	AuthNone     = "none"
	AuthGSS      = "gss"
	AuthSSPI     = "sspi"
	AuthOAuth    = "oauth"
)

var allAuthMethods = []string{AuthSCRAM, AuthMD5, AuthPassword, AuthNone, AuthGSS, AuthSSPI, AuthOAuth}

// authPolicy is the set of authentication methods a connection may use.
type authPolicy struct {
	allowed []string
}

// parseRequireAuth reads libpq's require_auth: a list of methods, or a list
// of negated methods ("!md5,!password").
func parseRequireAuth(s string) (authPolicy, error) {
	parts := strings.Split(s, ",")
	negated := strings.HasPrefix(strings.TrimSpace(parts[0]), "!")
	set := map[string]bool{}
	if negated {
		for _, m := range allAuthMethods {
			set[m] = true
		}
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		neg := strings.HasPrefix(p, "!")
		if neg != negated {
			return authPolicy{}, errors.New("negated and plain methods cannot be mixed")
		}
		m := strings.TrimPrefix(p, "!")
		if !slices.Contains(allAuthMethods, m) {
			return authPolicy{}, fmt.Errorf("unknown method %q (known: %s)", m, strings.Join(allAuthMethods, ", "))
		}
		set[m] = !negated
	}
	var out authPolicy
	for _, m := range allAuthMethods {
		if set[m] {
			out.allowed = append(out.allowed, m)
		}
	}
	if len(out.allowed) == 0 {
		return authPolicy{}, errors.New("no method left")
	}
	return out, nil
}

func (p authPolicy) String() string { return strings.Join(p.allowed, ",") }

// weakerThanSCRAM reports whether the policy allows more than scram-sha-256.
func (p authPolicy) weakerThanSCRAM() bool {
	return len(p.allowed) != 1 || p.allowed[0] != AuthSCRAM
}

// authWatch sits between pgx's protocol reader/writer and the TLS
// connection during the startup phase (installed through
// ConnConfig.BuildFrontend, so pgx still sees the *tls.Conn it needs for
// channel binding). It reads the server's authentication requests as they
// arrive and refuses a method the policy does not allow before pgx can answer
// it, records which method and SASL mechanism were used (for the report), and
// notices SQLSTATE 28P01 so that rotated credentials can be invalidated.
// After AuthenticationOk it is a plain pass-through.
type authWatch struct {
	r        io.Reader
	w        io.Writer
	policy   authPolicy
	onReject func() bool // called on 28P01 (invalid password); true: retry with fresh credentials

	finished atomic.Bool // fast path once AuthenticationOk was seen
	mu       sync.Mutex
	buf      []byte
	done     bool
	asked    bool
	method   string
	saslMec  string
}

// observation returns the authentication method and SASL mechanism seen.
func (w *authWatch) observation() (method, mechanism string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.method, w.saslMec
}

func (w *authWatch) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if w.finished.Load() || n == 0 {
		return n, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p[:n]...)
	rerr := w.scanServer()
	if w.done {
		w.finished.Store(true)
	}
	if rerr != nil {
		return 0, rerr
	}
	return n, err
}

func (w *authWatch) Write(p []byte) (int, error) {
	if w.finished.Load() {
		return w.w.Write(p)
	}
	w.mu.Lock()
	if !w.done && len(p) > 5 && p[0] == 'p' {
		if i := slices.Index(p[5:], 0); i > 0 {
			w.saslMec = string(p[5 : 5+i])
		}
	}
	w.mu.Unlock()
	return w.w.Write(p)
}

// scanServer consumes complete server messages from buf.
func (w *authWatch) scanServer() error {
	for len(w.buf) >= 5 && !w.done {
		typ := w.buf[0]
		size := int(binary.BigEndian.Uint32(w.buf[1:5]))
		if size < 4 || size > 1<<20 {
			w.done = true // not a startup exchange we understand; pgx will report it
			break
		}
		if len(w.buf) < 1+size {
			break
		}
		body := w.buf[5 : 1+size]
		w.buf = w.buf[1+size:]
		switch typ {
		case 'R':
			if err := w.authRequest(body); err != nil {
				return err
			}
		case 'E':
			if sqlstate(body) == "28P01" && w.onReject != nil && w.onReject() {
				w.done = true
				return errRetryFresh
			}
		}
	}
	if w.done {
		w.buf = nil
	}
	return nil
}

func (w *authWatch) authRequest(body []byte) error {
	if len(body) < 4 {
		return nil
	}
	var method string
	switch code := binary.BigEndian.Uint32(body); code {
	case 0: // AuthenticationOk
		if !w.asked {
			w.method = AuthNone
			if !slices.Contains(w.policy.allowed, AuthNone) {
				return w.refuse(AuthNone, "the server let the client in without any authentication (pg_hba trust)")
			}
		}
		w.done = true
		return nil
	case 3:
		method = AuthPassword
	case 5:
		method = AuthMD5
	case 7, 8:
		method = AuthGSS
	case 9:
		method = AuthSSPI
	case 10:
		method = AuthSCRAM
		if slices.Contains(strings.Split(string(body[4:]), "\x00"), "OAUTHBEARER") {
			method = AuthOAuth
		}
	default:
		return nil // SASL continue/final and others belong to a method already seen
	}
	w.asked = true
	w.method = method
	if !slices.Contains(w.policy.allowed, method) {
		return w.refuse(method, "")
	}
	return nil
}

func (w *authWatch) refuse(method, what string) error {
	if what == "" {
		what = fmt.Sprintf("the server asked for %s authentication", method)
	}
	fix := "configure the server for scram-sha-256 (password_encryption = 'scram-sha-256', reset the role's password, and use scram-sha-256 in pg_hba.conf)"
	if method == AuthNone {
		fix = "replace trust with scram-sha-256 in pg_hba.conf"
	}
	return fmt.Errorf("%w: %s, which the policy (require_auth=%s) does not allow; nothing was sent; %s; "+
		"or, knowingly, widen require_auth", ErrInsecureAuth, what, w.policy, fix)
}

// sqlstate extracts the C field of an ErrorResponse body.
func sqlstate(body []byte) string {
	for len(body) > 1 && body[0] != 0 {
		field := body[0]
		end := slices.Index(body[1:], 0)
		if end < 0 {
			return ""
		}
		if field == 'C' {
			return string(body[1 : 1+end])
		}
		body = body[2+end:]
	}
	return ""
}
