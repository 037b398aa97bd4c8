package testutil

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
)

// Role is a login role the tests connect as.
type Role struct {
	User, Password string
}

// StartServerWithRole starts a TLS server whose certificate p issues for o,
// with pg_hba.conf lines hba (none: DefaultHBA, TLS and scram-sha-256 only),
// creates r as a scram-sha-256 login role, and returns the server and its
// certificate. This is the fixture most tests start from.
func (p *PKI) StartServerWithRole(t testing.TB, o certgen.Options, r Role, hba ...string) (*Postgres, *certgen.Pair) {
	t.Helper()
	_, _, pair := p.Server(t, o)
	pg := StartPostgres(t, PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: pair.KeyPEM, HBA: hba})
	pg.CreateRole(t, r.User, r.Password)
	return pg, pair
}

// DSN is a postgres:// URL for r at host:port, database postgres; query, if
// not empty, is appended after "?" verbatim.
func (r Role) DSN(host string, port int, query string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(r.User, r.Password),
		Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: "/postgres", RawQuery: query}
	return u.String()
}

// Context returns a context that is cancelled after d or when t ends.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
