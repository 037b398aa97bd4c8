package proof

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/require"
)

// The role every test logs in as. The password is long and unusual so that
// finding it in captured bytes cannot be a coincidence.
const (
	appUser     = "app"
	appPassword = "Pr00f-Wire-S3cret-5b7d2e"
)

// quiet discards pgsecure's log where a test does not inspect it.
var quiet = slog.New(slog.DiscardHandler)

// app is the role every test logs in as.
var app = testutil.Role{User: appUser, Password: appPassword}

func ctxT(t testing.TB, d time.Duration) context.Context { return testutil.Context(t, d) }

// dsn is a URL for appUser at host:port; extra is appended as the query.
func dsn(host string, port int, extra string) string { return app.DSN(host, port, extra) }

// startServer starts a TLS server with a certificate issued by pki for o,
// pg_hba lines hba (nil: the harness default, TLS only) and the app role.
func startServer(t testing.TB, pki *testutil.PKI, o certgen.Options, hba ...string) *testutil.Postgres {
	t.Helper()
	pg, _ := pki.StartServerWithRole(t, o, app, hba...)
	return pg
}

// tlsCert issues a server certificate for o from ca and returns it ready for
// a TLS-terminating test double.
func tlsCert(t testing.TB, ca *certgen.CA, o certgen.Options) tls.Certificate {
	t.Helper()
	pair, err := ca.Issue(o)
	require.NoError(t, err)
	c, err := pair.TLSCertificate()
	require.NoError(t, err)
	return c
}

// rootsOf returns a pool holding pki's CA.
func rootsOf(pki *testutil.PKI) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(pki.CA.Cert)
	return pool
}

// containsPassword reports whether b holds the password verbatim. (An md5
// response is salted and cannot be searched for; frontendTypes catches it.)
func containsPassword(b []byte) bool { return bytes.Contains(b, []byte(appPassword)) }

// frontendTypes parses what a client sent inside a PostgreSQL session (a
// StartupMessage followed by typed messages) and returns the message type
// bytes after the startup packet. It stops at the first malformed message.
func frontendTypes(b []byte) []byte {
	if len(b) < 8 {
		return nil
	}
	n := int(binary.BigEndian.Uint32(b))
	if n < 8 || n > len(b) {
		return nil
	}
	var types []byte
	for rest := b[n:]; len(rest) >= 5; {
		l := int(binary.BigEndian.Uint32(rest[1:]))
		if l < 4 || 1+l > len(rest) {
			break
		}
		types = append(types, rest[0])
		rest = rest[1+l:]
	}
	return types
}
