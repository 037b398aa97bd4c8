package proof

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/verify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func matrixRows() []matrixRow {
	now := time.Now()
	valid := func(nb, na time.Time) certgen.Options {
		o := testutil.LocalServerOptions()
		o.NotBefore, o.NotAfter = nb, na
		return o
	}
	rows := []matrixRow{
		{name: "plaintext-only server (ssl=off)", sentinel: pgsecure.ErrNotEncrypted, setup: plaintextServerRow},
		{name: "'N' to SSLRequest", sentinel: pgsecure.ErrNotEncrypted, setup: answerNRow},
		{name: "certificate from an unpinned CA", sentinel: pgsecure.ErrUntrustedServer,
			setup: certRow(testutil.LocalServerOptions(), true, "localhost")},
		{name: "wrong hostname", sentinel: pgsecure.ErrUntrustedServer,
			setup: certRow(certgen.Options{CommonName: "db.example.com", DNSNames: []string{"db.example.com"}}, false, "localhost")},
		{name: "wrong IP", sentinel: pgsecure.ErrUntrustedServer,
			setup: certRow(certgen.Options{IPs: []net.IP{net.ParseIP("10.9.8.7")}}, false, "127.0.0.1")},
		{name: "expired", sentinel: pgsecure.ErrUntrustedServer,
			setup: certRow(valid(now.Add(-72*time.Hour), now.Add(-24*time.Hour)), false, "localhost")},
		{name: "not yet valid", sentinel: pgsecure.ErrUntrustedServer,
			setup: certRow(valid(now.Add(24*time.Hour), now.Add(72*time.Hour)), false, "localhost")},
		{name: "CN-only certificate, CN does not match", sentinel: pgsecure.ErrUntrustedServer,
			setup: certRow(certgen.Options{CommonName: "db.example.com"}, false, "localhost")},
		{name: "MITM with a trusted-CA certificate for another host", sentinel: pgsecure.ErrUntrustedServer, setup: mitmRow},
		{name: "TLS-terminating proxy to a plaintext upstream", sentinel: pgsecure.ErrNotEncrypted, setup: tlsProxyRow},
	}
	for _, method := range []string{"password", "md5", "trust"} {
		rows = append(rows, matrixRow{name: "server authenticates with " + method, sentinel: authSentinel,
			feature: "auth policy (require_auth=scram-sha-256)", setup: authRow(method)})
	}
	rows = append(rows,
		matrixRow{name: "TLS 1.0/1.1-only peer", sentinel: pgsecure.ErrNotEncrypted, setup: oldTLSRow},
		matrixRow{name: "SPKI pin mismatch", sentinel: pgsecure.ErrUntrustedServer, feature: "SPKIPins", setup: pinRow},
		matrixRow{name: "direct TLS without ALPN", sentinel: pgsecure.ErrNotEncrypted, feature: "sslnegotiation=direct", setup: alpnRow},
		matrixRow{name: "unix-socket host", sentinel: pgsecure.ErrInsecureConfig, setup: unixSocketRow},
	)
	for _, mode := range []string{"disable", "require", "verify-ca"} {
		rows = append(rows, matrixRow{name: "sslmode=" + mode + " in the DSN", sentinel: pgsecure.ErrInsecureConfig, setup: weakModeRow(mode, false)})
	}
	for _, mode := range []string{"prefer", "verify-ca"} {
		rows = append(rows, matrixRow{name: "PGSSLMODE=" + mode, sentinel: pgsecure.ErrInsecureConfig, setup: weakModeRow(mode, true)})
	}
	return rows
}

// authSentinel is what a refusal of a server's weak authentication method
// wraps.
var authSentinel = pgsecure.ErrInsecureAuth

func tapped(t *testing.T, upstream string, host string, extra string) (attempt, *testutil.Peer) {
	tap := testutil.WireTap(t, upstream)
	return attempt{
		connString: dsn(host, tap.Port, extra),
		captures:   []capture{{"client->server TCP bytes", tap.Wire}},
		contacted:  tap.Conns,
	}, tap
}

// plaintextServerRow: a real PostgreSQL with ssl=off behind a wire tap.
func plaintextServerRow(t *testing.T, _ *matrix) attempt {
	pg := testutil.StartPostgres(t, testutil.PGOptions{SSLOff: true})
	pg.CreateRole(t, appUser, appPassword)
	a, tap := tapped(t, pg.Addr(), "127.0.0.1", "")
	a.wantContact = true
	a.control = func(t *testing.T) {
		ctx := ctxT(t, 30*time.Second)
		raw, err := pgx.Connect(ctx, dsn("127.0.0.1", tap.Port, "sslmode=prefer"))
		require.NoError(t, err, "control: an unguarded client logs in without TLS")
		defer raw.Close(ctx)
		var ssl bool
		require.NoError(t, raw.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl))
		assert.False(t, ssl, "control: the session is plaintext")
	}
	return a
}

// answerNRow: a downgrade attacker answering 'N' and asking for a cleartext
// password.
func answerNRow(t *testing.T, _ *matrix) attempt {
	p := testutil.AnswerN(t)
	return attempt{
		connString: dsn(p.Host, p.Port, ""), captures: peerCaptures(p), contacted: p.Conns, wantContact: true,
		control: func(t *testing.T) {
			ctx := ctxT(t, 30*time.Second)
			_, err := pgx.Connect(ctx, dsn(p.Host, p.Port, "sslmode=prefer"))
			require.Error(t, err)
			assert.Contains(t, p.Passwords(), appPassword, "control: sslmode=prefer hands the password over")
			assert.True(t, containsPassword(p.Wire()), "control: the capture sees a cleartext password")
		},
	}
}

// certRow puts a certificate for o (from the unpinned CA when byOther) on the
// shared server and connects to host through a wire tap.
func certRow(o certgen.Options, byOther bool, host string) func(*testing.T, *matrix) attempt {
	return func(t *testing.T, m *matrix) attempt {
		ca := m.pki.CA
		if byOther {
			ca = m.other
		}
		pair, err := ca.Issue(o)
		require.NoError(t, err)
		m.swap.SetServerCert(t, pair.CertPEM, pair.KeyPEM)
		a, _ := tapped(t, m.swap.Addr(), host, "")
		a.wantContact = true
		a.check = func(t *testing.T, err error) {
			var ce *pgsecure.CertificateError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, host, ce.Host)
		}
		return a
	}
}

// mitmRow: an interceptor holding a certificate from the pinned CA, but for
// another host, re-terminating TLS to the real server.
func mitmRow(t *testing.T, m *matrix) attempt {
	cert := tlsCert(t, m.pki.CA, certgen.Options{CommonName: "evil.example.com", DNSNames: []string{"evil.example.com"}})
	p := testutil.TLSPeer(t, cert, m.good.Addr(), &tls.Config{RootCAs: rootsOf(m.pki), ServerName: "localhost"})
	return attempt{
		connString: dsn("localhost", p.Port, ""), captures: peerCaptures(p), contacted: p.Conns, wantContact: true,
		control: func(t *testing.T) {
			ctx := ctxT(t, 30*time.Second)
			// Channel binding would expose this interceptor (the server's TLS
			// session is not the client's); a client that does not insist on
			// it is fooled.
			raw, err := pgx.Connect(ctx, dsn("localhost", p.Port, "sslmode=require&channel_binding=disable"))
			require.NoError(t, err, "control: sslmode=require logs in through the interceptor")
			raw.Close(ctx)
			assert.Contains(t, string(frontendTypes(p.Decrypted())), "p", "control: the interceptor read the authentication exchange")
		},
	}
}

// tlsProxyRow: TLS ends at a proxy that talks plaintext to the server. The
// client's checks pass (the proxy's certificate is valid for the host); only
// the server-side check (pg_stat_ssl) can see it.
func tlsProxyRow(t *testing.T, m *matrix) attempt {
	p := testutil.TLSPeer(t, tlsCert(t, m.pki.CA, testutil.LocalServerOptions()), m.good.Addr(), nil)
	return attempt{
		connString: dsn("localhost", p.Port, ""), captures: peerCaptures(p)[:2], contacted: p.Conns, wantContact: true,
		check: func(t *testing.T, err error) {
			assert.NotErrorIs(t, err, pgsecure.ErrUntrustedServer, "the certificate is fine; the path is not")
			var ve *verify.Error
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, verify.StageServerCheck, ve.Stage)
			assert.Contains(t, err.Error(), "ssl=false")
			assert.NotEmpty(t, p.Decrypted(), "the session reached the proxy encrypted")
		},
	}
}

// authRow: a real TLS server authenticating with method, reached through a
// TLS-terminating relay (trusted certificate, TLS onward to the server) that
// shows what the client sent inside TLS.
func authRow(method string) func(*testing.T, *matrix) attempt {
	return func(t *testing.T, m *matrix) attempt {
		pg := startServer(t, m.pki, testutil.LocalServerOptions(), "hostssl all all 127.0.0.1/32 "+method)
		if method == "md5" {
			pg.Exec(t, "SET password_encryption = 'md5'", fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, appPassword))
		}
		p := testutil.TLSPeer(t, tlsCert(t, m.pki.CA, testutil.LocalServerOptions()), pg.Addr(),
			&tls.Config{RootCAs: rootsOf(m.pki), ServerName: "localhost"})
		a := attempt{
			connString: dsn("localhost", p.Port, ""), captures: peerCaptures(p)[:2], contacted: p.Conns, wantContact: true,
			noPasswordMessage: p.Decrypted,
			check: func(t *testing.T, err error) {
				assert.Contains(t, err.Error(), method, "the error names the method the server asked for")
			},
		}
		if method == "password" {
			a.control = func(t *testing.T) {
				ctx := ctxT(t, 30*time.Second)
				raw, err := pgx.Connect(ctx, dsn("localhost", p.Port, "sslmode=verify-full&sslrootcert="+m.pki.CAFile))
				require.NoError(t, err, "control: raw verify-full logs in")
				raw.Close(ctx)
				assert.True(t, containsPassword(p.Decrypted()), "control: the password crossed the relay inside TLS")
			}
		}
		return a
	}
}

// oldTLSRow: a peer that speaks at most TLS 1.1.
func oldTLSRow(t *testing.T, m *matrix) attempt {
	p := testutil.TLSVersionPeer(t, tlsCert(t, m.pki.CA, testutil.LocalServerOptions()), tls.VersionTLS11)
	return attempt{connString: dsn("localhost", p.Port, ""), captures: peerCaptures(p), contacted: p.Conns, wantContact: true}
}

// pinRow: a valid server whose key is not the pinned one. The control pins
// the server's real key through the same path and is accepted.
func pinRow(t *testing.T, m *matrix) attempt {
	pair, err := m.pki.CA.Issue(testutil.LocalServerOptions())
	require.NoError(t, err)
	a, tap := tapped(t, m.good.Addr(), "localhost", "")
	a.wantContact = true
	a.builder = func(b *pgsecure.Builder) *pgsecure.Builder { return b.SPKIPins(certgen.SPKIPin(pair.Cert)) }
	a.check = func(t *testing.T, err error) {
		var ce *pgsecure.CertificateError
		assert.ErrorAs(t, err, &ce)
	}
	a.control = func(t *testing.T) {
		ctx := ctxT(t, 30*time.Second)
		chain, err := testutil.ServerCertificates(ctx, m.good.Addr())
		require.NoError(t, err)
		pool, err := pgsecure.NewBuilder(dsn("localhost", tap.Port, "")).RootCAFile(m.pki.CAFile).Logger(quiet).
			SPKIPins(certgen.SPKIPin(chain[0])).Build(ctx)
		require.NoError(t, err, "control: the right pin is accepted")
		pool.Close()
	}
	return a
}

// alpnRow: a direct-TLS peer that negotiates no ALPN protocol.
func alpnRow(t *testing.T, m *matrix) attempt {
	p := testutil.ALPNPeer(t, tlsCert(t, m.pki.CA, testutil.LocalServerOptions()), nil)
	return attempt{
		connString: dsn("localhost", p.Port, "sslnegotiation=direct"), captures: peerCaptures(p), contacted: p.Conns, wantContact: true,
		check: func(t *testing.T, err error) { assert.Contains(t, err.Error(), "ALPN") },
	}
}

// unixSocketRow: the host is a unix-socket directory, where a listener of
// our own records anything that arrives.
func unixSocketRow(t *testing.T, _ *matrix) attempt {
	l := listenUnix(t)
	return attempt{
		connString: fmt.Sprintf("host=%s port=5432 user=%s password=%s dbname=postgres", l.dir, appUser, appPassword),
		captures:   []capture{{"unix-socket bytes", l.bytes}},
		contacted:  l.conns,
	}
}

// weakModeRow: a weaker sslmode in the DSN or PGSSLMODE, aimed through a
// wire tap at a server that would accept plaintext.
func weakModeRow(mode string, env bool) func(*testing.T, *matrix) attempt {
	return func(t *testing.T, m *matrix) attempt {
		extra := "sslmode=" + mode
		if env {
			t.Setenv("PGSSLMODE", mode)
			extra = ""
		}
		a, _ := tapped(t, m.good.Addr(), "localhost", extra)
		a.check = func(t *testing.T, err error) {
			var ce *pgsecure.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "sslmode", ce.Setting)
		}
		return a
	}
}
