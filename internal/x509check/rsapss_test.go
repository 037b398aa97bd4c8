package x509check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readPSSFixture(t *testing.T) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile("testdata/rsa-pss.crt")
	require.NoError(t, err)
	block, _ := pem.Decode(b)
	require.NotNil(t, block)
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err, "crypto/x509 parses an RSA-PSS certificate (with an unknown key algorithm)")
	return c
}

func TestIsRSAPSS(t *testing.T) {
	assert.True(t, IsRSAPSS(readPSSFixture(t)))
	for _, kt := range []certgen.KeyType{certgen.ECDSAP256, certgen.RSA2048} {
		p, err := certgen.SelfSigned(certgen.Options{CommonName: "x", KeyType: kt})
		require.NoError(t, err)
		assert.False(t, IsRSAPSS(p.Cert), kt)
	}
}

// sslServer is a test double for a PostgreSQL server's TLS start (it cannot
// be PostgreSQL: Go's crypto/tls plays the server so that the test needs no
// cluster): it answers 'S' to the SSLRequest, then runs a TLS server with
// cfg. The outside-in test against PostgreSQL with an RSA-PSS key is in
// internal/proof.
func sslServer(t *testing.T, answer byte, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var req [8]byte
				if _, err := io.ReadFull(c, req[:]); err != nil {
					return
				}
				_, _ = c.Write([]byte{answer})
				if answer == 'S' {
					_ = tls.Server(c, cfg).Handshake()
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func probeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestProbeCertificateReadsTheServerChain(t *testing.T) {
	ca, err := certgen.NewCA("probe CA", certgen.ECDSAP256)
	require.NoError(t, err)
	for _, kt := range []certgen.KeyType{certgen.ECDSAP256, certgen.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			pair, err := ca.Issue(certgen.Options{CommonName: "db", KeyType: kt})
			require.NoError(t, err)
			tc, err := pair.TLSCertificate()
			require.NoError(t, err)
			addr := sslServer(t, 'S', &tls.Config{Certificates: []tls.Certificate{tc}})
			chain, err := ProbeCertificate(probeCtx(t), addr)
			require.NoError(t, err)
			require.NotEmpty(t, chain)
			assert.Equal(t, pair.Cert.Raw, chain[0].Raw)
			assert.False(t, IsRSAPSS(chain[0]))
		})
	}
}

func TestProbeCertificateRefusals(t *testing.T) {
	_, err := ProbeCertificate(probeCtx(t), sslServer(t, 'N', nil))
	assert.ErrorContains(t, err, "declined TLS")

	// A server whose TLS cannot agree with the probe ends with an alert.
	pair, err := certgen.SelfSigned(certgen.Options{CommonName: "db"})
	require.NoError(t, err)
	tc, err := pair.TLSCertificate()
	require.NoError(t, err)
	addr := sslServer(t, 'S', &tls.Config{Certificates: []tls.Certificate{tc}, MinVersion: tls.VersionTLS13})
	_, err = ProbeCertificate(probeCtx(t), addr)
	assert.ErrorContains(t, err, "alert")
}

func TestExplainHandshakeFailureOnlyForHandshakeFailures(t *testing.T) {
	pair, err := certgen.SelfSigned(certgen.Options{CommonName: "db"})
	require.NoError(t, err)
	tc, err := pair.TLSCertificate()
	require.NoError(t, err)
	addr := sslServer(t, 'S', &tls.Config{Certificates: []tls.Certificate{tc}})
	assert.Empty(t, ExplainHandshakeFailure(probeCtx(t), addr, nil))
	assert.Empty(t, ExplainHandshakeFailure(probeCtx(t), addr, errors.New("some other error")))
	assert.Empty(t, ExplainHandshakeFailure(probeCtx(t), addr, errors.New("remote error: tls: handshake failure")),
		"an ECDSA server is not explained as RSA-PSS")
}
