package pgsecure_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"testing"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func peerDSN(p *testutil.Peer, host string) string {
	return fmt.Sprintf("postgres://%s:%s@%s:%d/postgres?connect_timeout=10", appUser, appPassword, host, p.Port)
}

func assertNoPasswordLeak(t *testing.T, p *testutil.Peer) {
	t.Helper()
	assert.Empty(t, p.Passwords(), "the peer obtained no password")
	assert.False(t, bytes.Contains(p.Wire(), []byte(appPassword)), "the password never crossed the wire in cleartext")
	assert.False(t, bytes.Contains(p.Decrypted(), []byte(appPassword)), "the password was not sent inside TLS either")
}

// TestServerAnsweringNRefused: a downgrade attacker answers 'N' to the
// SSLRequest; pgsecure refuses and sends nothing more.
func TestServerAnsweringNRefused(t *testing.T) {
	t.Parallel()
	p := testutil.AnswerN(t)
	pki := testutil.NewPKI(t)
	_, err := pgsecure.NewBuilder(peerDSN(p, "127.0.0.1")).RootCAFile(pki.CAFile).Build(ctxT(t))
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Contains(t, err.Error(), "declined TLS")
	assert.Empty(t, p.Startups(), "no startup message (user name) was sent in plaintext")
	assertNoPasswordLeak(t, p)
}

// TestPlaintextPeerRefused: a peer that does not speak the SSLRequest
// protocol at all.
func TestPlaintextPeerRefused(t *testing.T) {
	t.Parallel()
	p := testutil.PlaintextServer(t)
	pki := testutil.NewPKI(t)
	_, err := pgsecure.NewBuilder(peerDSN(p, "127.0.0.1")).RootCAFile(pki.CAFile).Build(ctxT(t))
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Contains(t, err.Error(), "does not support TLS")
	assert.Empty(t, p.Startups())
	assertNoPasswordLeak(t, p)
}

// TestForeignCertificatePeerRefused: a server presenting a certificate from
// an unpinned CA gets nothing: the handshake fails before the startup message.
func TestForeignCertificatePeerRefused(t *testing.T) {
	t.Parallel()
	other := testutil.NewPKI(t)
	_, _, pair := other.Server(t, testutil.LocalServerOptions())
	cert, err := pair.TLSCertificate()
	require.NoError(t, err)
	p := testutil.TLSPeer(t, cert, "", nil)
	pki := testutil.NewPKI(t)
	_, err = pgsecure.NewBuilder(peerDSN(p, "localhost")).RootCAFile(pki.CAFile).Build(ctxT(t))
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer)
	assert.Empty(t, p.Startups())
	assertNoPasswordLeak(t, p)
}

// TestMITMWithTrustedCertificateForAnotherHost: an interceptor holding a
// certificate from the pinned CA, but for another host name, re-terminates
// TLS towards the real server. The host name check refuses it.
func TestMITMWithTrustedCertificateForAnotherHost(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	_, _, pair := pki.Server(t, certgen.Options{CommonName: "attacker.example.com", DNSNames: []string{"attacker.example.com"}})
	cert, err := pair.TLSCertificate()
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(pki.CA.Cert)
	upstream := &tls.Config{ServerName: "localhost", RootCAs: roots}
	p := testutil.TLSPeer(t, cert, pg.Addr(), upstream)
	_, err = pgsecure.NewBuilder(peerDSN(p, "localhost")).RootCAFile(pki.CAFile).Build(ctxT(t))
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer)
	assert.Contains(t, err.Error(), "attacker.example.com")
	assertNoPasswordLeak(t, p)
}

// TestTLSTerminatingProxyCaughtByServerCheck: a proxy holding the real
// server's certificate terminates TLS and forwards in plaintext. Every local
// check passes; the server's pg_stat_ssl says ssl=false and pgsecure refuses
// the connection after authentication.
func TestTLSTerminatingProxyCaughtByServerCheck(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	_, _, pair := pki.Server(t, testutil.LocalServerOptions())
	pg := testutil.StartPostgres(t, testutil.PGOptions{SSLOff: true})
	pg.CreateRole(t, appUser, appPassword)
	cert, err := pair.TLSCertificate()
	require.NoError(t, err)
	p := testutil.TLSPeer(t, cert, pg.Addr(), nil)
	_, err = pgsecure.NewBuilder(peerDSN(p, "localhost")).RootCAFile(pki.CAFile).Build(ctxT(t))
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Contains(t, err.Error(), "ssl=false")
	assert.Contains(t, err.Error(), "server check")
	assert.False(t, bytes.Contains(p.Wire(), []byte(appPassword)), "the client itself sent the password only inside TLS")
}

// TestDirectTLSRequiresALPN: sslnegotiation=direct against a peer that
// completes TLS without selecting ALPN "postgresql" is refused before the
// startup message; one that selects it gets the startup message.
func TestDirectTLSRequiresALPN(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	_, _, pair := pki.Server(t, testutil.LocalServerOptions())
	cert, err := pair.TLSCertificate()
	require.NoError(t, err)

	noALPN := testutil.ALPNPeer(t, cert, nil)
	_, err = pgsecure.NewBuilder(peerDSN(noALPN, "localhost") + "&sslnegotiation=direct").RootCAFile(pki.CAFile).Build(ctxT(t))
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Contains(t, err.Error(), "ALPN")
	assert.Empty(t, noALPN.Startups())
	assertNoPasswordLeak(t, noALPN)

	withALPN := testutil.ALPNPeer(t, cert, []string{"postgresql"})
	_, err = pgsecure.NewBuilder(peerDSN(withALPN, "localhost") + "&sslnegotiation=direct").RootCAFile(pki.CAFile).Build(ctxT(t))
	require.Error(t, err, "the double then asks for a cleartext password, which the auth policy refuses")
	assert.ErrorIs(t, err, pgsecure.ErrInsecureAuth)
	require.Len(t, withALPN.Startups(), 1, "the startup message was sent over the direct TLS connection")
	assert.Equal(t, appUser, withALPN.Startups()[0]["user"])
	assertNoPasswordLeak(t, withALPN)
}

// TestOldTLSVersionRefused: a peer capped at TLS 1.1 (or 1.0) is refused.
func TestOldTLSVersionRefused(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	_, _, pair := pki.Server(t, testutil.LocalServerOptions())
	cert, err := pair.TLSCertificate()
	require.NoError(t, err)
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		p := testutil.TLSVersionPeer(t, cert, v)
		_, err = pgsecure.NewBuilder(peerDSN(p, "localhost")).RootCAFile(pki.CAFile).Build(ctxT(t))
		require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
		assertNoPasswordLeak(t, p)
	}
}
