package testutil

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/certgen"
)

// peerURL is a libpq URL for user app with password testPassword at peer p.
func peerURL(p *Peer, query string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("app", testPassword), Host: p.Addr, Path: "/appdb",
		RawQuery: "connect_timeout=5&" + query}
	return u.String()
}

// localCert issues a TLS certificate for 127.0.0.1/localhost from pki.
func localCert(t *testing.T, pki *PKI) (tls.Certificate, *certgen.Pair) {
	_, _, pair := pki.Server(t, LocalServerOptions())
	cert, err := pair.TLSCertificate()
	require.NoError(t, err)
	return cert, pair
}

func TestAnswerNCapturesPasswordFromPreferClient(t *testing.T) {
	t.Parallel()
	// This is exactly what pgsecure must prevent: pgx's default sslmode=prefer
	// accepts the 'N' and sends the password in plaintext.
	peer := AnswerN(t)
	_, err := connect(t, peerURL(peer, "sslmode=prefer"))
	requireSQLState(t, err, "28P01")
	assert.Equal(t, []string{testPassword}, peer.Passwords())
	assert.Contains(t, string(peer.Wire()), testPassword, "the password crossed the wire in cleartext")
	assert.Equal(t, 2, peer.Conns(), "one refused TLS attempt, one plaintext fallback")
	require.Len(t, peer.Startups(), 1)
	assert.Equal(t, "app", peer.Startups()[0]["user"])
	assert.True(t, bytes.HasPrefix(peer.Wire(), sslRequest()))

	strict := AnswerN(t)
	_, err = connect(t, peerURL(strict, "sslmode=require"))
	require.Error(t, err)
	assert.Empty(t, strict.Passwords())
	assert.NotContains(t, string(strict.Wire()), testPassword)
	assert.Empty(t, strict.Decrypted())
}

func TestPlaintextServerRepliesInPlaintext(t *testing.T) {
	t.Parallel()
	peer := PlaintextServer(t)
	_, err := connect(t, peerURL(peer, "sslmode=require"))
	require.ErrorContains(t, err, "server refused TLS")
	_, err = connect(t, peerURL(peer, "sslmode=require&sslnegotiation=direct"))
	require.Error(t, err)
	assert.Empty(t, peer.Passwords())
	assert.NotContains(t, string(peer.Wire()), testPassword)

	c, err := net.Dial("tcp", peer.Addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(sslRequest())
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	typ, _, err := readMessage(c)
	require.NoError(t, err)
	assert.Equal(t, byte('E'), typ, "an SSLRequest must get a plaintext ErrorResponse, not 'S' or 'N'")

	_, err = connect(t, peerURL(peer, "sslmode=disable"))
	requireSQLState(t, err, "28P01")
	assert.Equal(t, []string{testPassword}, peer.Passwords())
}

func TestTLSPeerWithForeignCertificate(t *testing.T) {
	t.Parallel()
	trusted, foreign := NewPKI(t), NewPKI(t)
	cert, _ := localCert(t, foreign)
	peer := TLSPeer(t, cert, "", nil)

	_, err := connect(t, peerURL(peer, "sslmode=verify-full&sslrootcert="+trusted.CAFile))
	var ua x509.UnknownAuthorityError
	require.ErrorAs(t, err, &ua)
	assert.Empty(t, peer.Passwords())
	assert.Empty(t, peer.Decrypted(), "nothing may be sent before verification")

	// Without verification the client hands its password to the impostor;
	// TLS hides it from the wire but not from the peer.
	_, err = connect(t, peerURL(peer, "sslmode=require"))
	requireSQLState(t, err, "28P01")
	assert.Equal(t, []string{testPassword}, peer.Passwords())
	assert.Contains(t, string(peer.Decrypted()), testPassword)
	assert.NotContains(t, string(peer.Wire()), testPassword)
}

func TestTLSPeerProxiesToPlaintextServer(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	pg := appServer(t, pki, PGOptions{SSLOff: true})
	cert, _ := localCert(t, pki)
	peer := TLSPeer(t, cert, pg.Addr(), nil)

	conn, err := connect(t, peerURL(peer, "sslmode=verify-full&sslrootcert="+pki.CAFile))
	require.NoError(t, err, "the client's TLS checks all pass")
	assert.Equal(t, uint16(tls.VersionTLS13), tlsState(t, conn).Version)
	assert.False(t, sslInUse(t, conn), "the server saw a plaintext connection")
	assert.Contains(t, string(peer.Decrypted()), "appdb", "the decrypted startup was relayed")
}

func TestTLSPeerReterminatesTLS(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	pg := appServer(t, pki, PGOptions{})
	mitmCert, mitmPair := localCert(t, pki)
	upstreamTLS := &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}
	upstreamTLS.RootCAs.AddCert(pki.CA.Cert)
	peer := TLSPeer(t, mitmCert, pg.Addr(), upstreamTLS)

	// pgx's default SCRAM channel binding (tls-server-end-point) exposes the
	// MITM: the server hashes its own certificate, the client the MITM's.
	_, err := connect(t, peerURL(peer, "sslmode=verify-full&sslrootcert="+pki.CAFile))
	requireSQLState(t, err, "28000")
	require.ErrorContains(t, err, "channel binding")

	conn, err := connect(t, peerURL(peer, "sslmode=verify-full&channel_binding=disable&sslrootcert="+pki.CAFile))
	require.NoError(t, err)
	assert.True(t, sslInUse(t, conn), "the server saw TLS (from the MITM)")
	assert.Equal(t, mitmPair.Cert.Raw, tlsState(t, conn).PeerCertificates[0].Raw)
	real, err := ServerCertificates(testCtx(t), pg.Addr())
	require.NoError(t, err)
	assert.NotEqual(t, certgen.SPKIPin(real[0]), certgen.SPKIPin(mitmPair.Cert), "a pin would tell them apart")
	assert.Contains(t, string(peer.Decrypted()), "appdb")
}

func TestWireTapRecordsBothDirections(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	pg := appServer(t, pki, PGOptions{})
	tap := WireTap(t, pg.Addr())
	conn, err := connect(t, peerURL(tap, "sslmode=verify-full&sslrootcert="+pki.CAFile))
	require.NoError(t, err)
	assert.True(t, sslInUse(t, conn))
	assert.True(t, bytes.HasPrefix(tap.Wire(), sslRequest()))
	assert.True(t, bytes.HasPrefix(tap.ServerWire(), []byte{'S'}))
	assert.NotContains(t, string(tap.Wire()), testPassword)
	assert.NotContains(t, string(tap.Wire()), "appdb", "the startup message travels inside TLS")

	// The tap does see cleartext when there is some: a plaintext server using
	// the "password" method.
	plain := appServer(t, pki, PGOptions{SSLOff: true, HBA: []string{"host all all 127.0.0.1/32 password"}})
	plainTap := WireTap(t, plain.Addr())
	_, err = connect(t, peerURL(plainTap, "sslmode=disable"))
	require.NoError(t, err)
	assert.Contains(t, string(plainTap.Wire()), testPassword)
	assert.Equal(t, 1, plainTap.Conns())
}

func TestALPNPeer(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	cert, _ := localCert(t, pki)
	roots := x509.NewCertPool()
	roots.AddCert(pki.CA.Cert)
	negotiated := func(p *Peer) (string, error) {
		c, err := tls.Dial("tcp", p.Addr, &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"postgresql"}})
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().NegotiatedProtocol, nil
	}

	silent := ALPNPeer(t, cert, nil)
	proto, err := negotiated(silent)
	require.NoError(t, err)
	assert.Empty(t, proto, "a peer without ALPN negotiates none")
	_, err = connect(t, peerURL(silent, "sslmode=verify-full&sslnegotiation=direct&sslrootcert="+pki.CAFile))
	requireSQLState(t, err, "28P01")
	require.Len(t, silent.Startups(), 1, "pgx sent its startup despite the missing ALPN")
	assert.Equal(t, "appdb", silent.Startups()[0]["database"])
	assert.False(t, bytes.Contains(silent.Wire(), sslRequest()), "direct TLS sends no SSLRequest")

	proper := ALPNPeer(t, cert, []string{"postgresql"})
	proto, err = negotiated(proper)
	require.NoError(t, err)
	assert.Equal(t, "postgresql", proto)

	wrong := ALPNPeer(t, cert, []string{"http/1.1"})
	_, err = negotiated(wrong)
	require.Error(t, err, "Go's server aborts when no protocol is shared")
}

func TestTLSVersionPeer(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	cert, _ := localCert(t, pki)
	old := TLSVersionPeer(t, cert, tls.VersionTLS11)

	c, err := net.Dial("tcp", old.Addr)
	require.NoError(t, err)
	defer c.Close()
	roots := x509.NewCertPool()
	roots.AddCert(pki.CA.Cert)
	tc, err := startTLSClient(c, &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS10})
	require.NoError(t, err)
	assert.Equal(t, uint16(tls.VersionTLS11), tc.ConnectionState().Version)
	_ = tc.Close()

	_, err = connect(t, peerURL(old, "sslmode=verify-full&sslrootcert="+pki.CAFile))
	require.ErrorContains(t, err, "protocol version")
	assert.Empty(t, old.Passwords())

	tls12 := TLSVersionPeer(t, cert, tls.VersionTLS12)
	_, err = connect(t, peerURL(tls12, "sslmode=verify-full&sslrootcert="+pki.CAFile))
	requireSQLState(t, err, "28P01")
	assert.Equal(t, []string{testPassword}, tls12.Passwords())
	assert.NotContains(t, string(tls12.Wire()), testPassword)
}

// Not parallel: the closed listener's port is free again, and a peer of a
// test running beside it may be given that port, which the dial below would
// then reach.
func TestPeerStopsWhenTestEnds(t *testing.T) {
	var addr string
	var open net.Conn
	t.Run("peer", func(t *testing.T) {
		p := AnswerN(t)
		addr = p.Addr
		var err error
		open, err = net.Dial("tcp", addr)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return p.Conns() == 1 }, 5*time.Second, 5*time.Millisecond)
	})
	defer open.Close()
	require.NoError(t, open.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := io.ReadAll(open)
	require.NoError(t, err, "the open connection must be closed (EOF), not time out")
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "the listener must be closed")
}
