package x509check

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRefusalsNameTheCertificateAtFault: crypto/x509 reports a non-CA
// issuer as an unknown authority, a CA's EKU as the leaf's and an expired
// CA without naming it; the refusal must name that certificate.
func TestRefusalsNameTheCertificateAtFault(t *testing.T) {
	now := time.Now()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial := int64(0)
	mk := func(cn string, parent *x509.Certificate, edit func(*x509.Certificate)) *x509.Certificate {
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
		if edit != nil {
			edit(tmpl)
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, key)
		require.NoError(t, err)
		c, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return c
	}
	leafOf := func(issuer *x509.Certificate) *x509.Certificate {
		return mk("leaf", issuer, func(c *x509.Certificate) {
			c.IsCA, c.DNSNames, c.ExtKeyUsage = false, []string{"db.example"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		})
	}
	root := mk("root", nil, nil)
	for _, c := range []struct {
		name, problem string
		issuer        func(*x509.Certificate)
	}{
		{"issuer CA:FALSE", `the certificate "CN=issuer" that issued "CN=leaf" is not a CA`, func(c *x509.Certificate) { c.IsCA = false }},
		{"issuer EKU clientAuth", `the CA "CN=issuer" in its chain may not issue certificates for TLS server authentication`,
			func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }},
		{"issuer expired", `the CA certificate "CN=issuer" in its chain expired on`,
			func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-2*time.Hour), now.Add(-time.Hour) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			issuer := mk("issuer", root, c.issuer)
			_, err := VerifyChain([]*x509.Certificate{leafOf(issuer), issuer}, rootsOf(root), now)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Contains(t, e.Problem, c.problem)
			assert.NotEmpty(t, e.Fix)
		})
	}
}
