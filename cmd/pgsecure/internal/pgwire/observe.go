package pgwire

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Authentication request codes ('R' messages) of the protocol.
const (
	AuthOK                = 0
	AuthKerberosV5        = 2
	AuthCleartextPassword = 3
	AuthMD5Password       = 5
	AuthGSS               = 7
	AuthGSSContinue       = 8
	AuthSSPI              = 9
	AuthSASL              = 10
	AuthSASLContinue      = 11
	AuthSASLFinal         = 12
)

// Auth is what one connection's startup exchange showed about its
// authentication. It never holds a password, hash or SASL proof.
type Auth struct {
	// Requests are the authentication request codes the server sent, in order
	// (the last is AuthOK when the login succeeded).
	Requests []uint32
	// Offered are the SASL mechanisms the server offered (AuthSASL).
	Offered []string
	// Mechanism is the SASL mechanism the client chose in its
	// SASLInitialResponse; "SCRAM-SHA-256-PLUS" means channel binding.
	Mechanism string
	// BackendPID is the server process id (BackendKeyData).
	BackendPID uint32
	// User and Database are what the client's StartupMessage asked for.
	User, Database string
}

// Method names the authentication method the server used in libpq's
// require_auth spelling: "scram-sha-256" (with or without channel binding:
// see ChannelBinding), "md5", "password" (cleartext), "gss", "sspi", or
// "none" when the server let the client in without asking for anything
// (pg_hba "trust", or "cert" where the client certificate alone
// authenticated). A SASL exchange with a mechanism other than SCRAM-SHA-256
// is named by its lower-cased mechanism ("sasl" when the client chose none).
// Kerberos V5, which libpq no longer supports, is "kerberos". Method is ""
// when no authentication request was seen.
func (a Auth) Method() string {
	for _, code := range a.Requests {
		switch code {
		case AuthCleartextPassword:
			return "password"
		case AuthMD5Password:
			return "md5"
		case AuthSASL:
			switch {
			case a.Mechanism == "":
				return "sasl"
			case strings.HasPrefix(a.Mechanism, "SCRAM-SHA-256"):
				return "scram-sha-256"
			}
			return strings.ToLower(a.Mechanism)
		case AuthGSS:
			return "gss"
		case AuthSSPI:
			return "sspi"
		case AuthKerberosV5:
			return "kerberos"
		case AuthOK:
			return "none"
		}
	}
	return ""
}

// ChannelBinding reports whether the client bound SCRAM to the TLS channel.
func (a Auth) ChannelBinding() bool { return a.Mechanism == "SCRAM-SHA-256-PLUS" }

// Observer records the authentication exchange of the connections pgx makes
// with a configuration. It sees the protocol after TLS decryption by sitting
// between pgx's protocol reader/writer and the connection
// (pgconn.Config.BuildFrontend), so the connection itself — the *tls.Conn pgx
// uses for channel binding — is left untouched. Safe for concurrent use.
type Observer struct {
	mu    sync.Mutex
	conns []*tap
}

// BuildFrontend returns a pgconn.BuildFrontendFunc that observes each new
// connection and then builds its frontend with next (pgproto3.NewFrontend
// when nil).
func (o *Observer) BuildFrontend(next pgconn.BuildFrontendFunc) pgconn.BuildFrontendFunc {
	if next == nil {
		next = pgproto3.NewFrontend
	}
	return func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		t := newTap()
		o.mu.Lock()
		o.conns = append(o.conns, t)
		o.mu.Unlock()
		s := tapStream{r: r, w: w, t: t}
		return next(s, s)
	}
}

// Auth returns what was seen of the connection whose backend has pid.
func (o *Observer) Auth(pid uint32) (Auth, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range o.conns {
		if a := t.snapshot(); a.BackendPID == pid && pid != 0 {
			return a, true
		}
	}
	return Auth{}, false
}

// Last returns what was seen of the most recent connection.
func (o *Observer) Last() (Auth, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.conns) == 0 {
		return Auth{}, false
	}
	return o.conns[len(o.conns)-1].snapshot(), true
}

// tap follows one connection: server messages until ReadyForQuery or an
// error, client messages until then.
type tap struct {
	mu             sync.Mutex
	auth           Auth
	server, client framer
}

func newTap() *tap {
	t := &tap{}
	t.server = framer{want: keepServer, handle: t.onServer}
	t.client = framer{untyped: true, want: t.keepClient, handle: t.onClient}
	return t
}

func (t *tap) snapshot() Auth {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.auth
	a.Requests = append([]uint32(nil), a.Requests...)
	a.Offered = append([]string(nil), a.Offered...)
	return a
}

func keepServer(typ byte) bool { return typ == 'R' || typ == 'K' }

func (t *tap) onServer(typ byte, body []byte) bool {
	switch typ {
	case 'R':
		if len(body) < 4 {
			return true
		}
		code := binary.BigEndian.Uint32(body)
		t.auth.Requests = append(t.auth.Requests, code)
		if code == AuthSASL {
			for _, m := range bytes.Split(bytes.TrimRight(body[4:], "\x00"), []byte{0}) {
				t.auth.Offered = append(t.auth.Offered, string(m))
			}
		}
	case 'K':
		if len(body) >= 4 {
			t.auth.BackendPID = binary.BigEndian.Uint32(body)
		}
	case 'Z', 'E':
		t.client.done = true
		return true
	}
	return false
}

// keepClient keeps a client message only when it is the StartupMessage or
// the SASLInitialResponse (the first 'p' after AuthSASL); password and hash
// messages are skipped unread.
func (t *tap) keepClient(typ byte) bool {
	n := len(t.auth.Requests)
	return typ == 0 || typ == 'p' && n > 0 && t.auth.Requests[n-1] == AuthSASL && t.auth.Mechanism == ""
}

func (t *tap) onClient(typ byte, body []byte) bool {
	if typ == 0 && len(body) >= 4 {
		fields := bytes.Split(bytes.TrimRight(body[4:], "\x00"), []byte{0})
		for i := 0; i+1 < len(fields); i += 2 {
			switch string(fields[i]) {
			case "user":
				t.auth.User = string(fields[i+1])
			case "database":
				t.auth.Database = string(fields[i+1])
			}
		}
	}
	if typ == 'p' && body != nil {
		if i := bytes.IndexByte(body, 0); i > 0 {
			t.auth.Mechanism = string(body[:i])
		}
		clear(body)
	}
	return false
}

// observe feeds what crossed the connection to one direction's framer.
func (t *tap) observe(f *framer, p []byte) {
	if len(p) > 0 {
		t.mu.Lock()
		f.feed(p)
		t.mu.Unlock()
	}
}

// tapStream passes reads and writes through and shows them to the tap.
type tapStream struct {
	r io.Reader
	w io.Writer
	t *tap
}

// NetConn exposes the connection under the tap, so that pgsecure's
// authentication stage, which the observer wraps, finds the connection
// attempt it belongs to.
func (s tapStream) NetConn() net.Conn {
	c, _ := s.w.(net.Conn)
	return c
}

func (s tapStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.t.observe(&s.t.server, p[:n])
	return n, err
}

func (s tapStream) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.t.observe(&s.t.client, p[:n])
	return n, err
}
