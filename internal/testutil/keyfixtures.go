package testutil

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
)

// FixturePassphrase encrypts the encrypted private-key fixtures
// (internal/tlspolicy/testdata/keys, made by openssl; see its README).
const FixturePassphrase = "pgsecure-fixture-passphrase"

// KeyFixture reads one private-key fixture by name, from any package's
// tests.
func KeyFixture(t testing.TB, name string) []byte {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	return ReadFixture(t, filepath.Join(filepath.Dir(here), "..", "tlspolicy", "testdata", "keys"), name)
}

// ClientCertForKey issues a client certificate (CN cn, clientAuth) for the
// public key pub, signed by ca, in PEM.
func ClientCertForKey(t testing.TB, ca *certgen.CA, pub crypto.PublicKey, cn string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    ca.Cert.NotBefore,
		NotAfter:     ca.Cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatalf("issuing a client certificate: %v", err)
	}
	return certgen.EncodeCertPEM(der)
}
