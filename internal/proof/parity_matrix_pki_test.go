package proof

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/stretchr/testify/require"
)

// mcert is a certificate of the parity matrix with its key.
type mcert struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

// mpki makes the matrix's certificates with crypto/x509, which writes
// whatever a template says (wildcards anywhere, several CNs, no names,
// constraints the CA does not obey), and with the openssl command line for
// what Go cannot write (RSA-PSS keys). Keys are generated once per run and
// shared: a key type is a dimension of its own, not of every row.
type mpki struct {
	t      *testing.T
	keys   map[string]crypto.Signer
	serial atomic.Int64
	now    time.Time

	root, inter, inter2, other *mcert
}

// Key names of the keys dimension.
const (
	keyP256    = "ECDSA P-256"
	keyP384    = "ECDSA P-384"
	keyEd25519 = "Ed25519"
	keyRSA2048 = "RSA 2048"
	keyRSA4096 = "RSA 4096"
)

func newMPKI(t *testing.T) *mpki {
	t.Helper()
	m := &mpki{t: t, keys: map[string]crypto.Signer{}, now: time.Now()}
	var err error
	m.keys[keyP256], err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	m.keys[keyP384], err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	_, m.keys[keyEd25519], err = ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	m.keys[keyRSA2048], err = certgen.GenerateKey(certgen.RSA2048)
	require.NoError(t, err)
	m.keys[keyRSA4096], err = certgen.GenerateKey(certgen.RSA4096) // the slow one: generated once
	require.NoError(t, err)
	m.root = m.ca("Matrix root CA", nil, nil)
	m.inter = m.ca("Matrix intermediate CA", m.root, nil)
	m.inter2 = m.ca("Matrix second intermediate CA", m.inter, nil)
	m.other = m.ca("Matrix unpinned CA", nil, nil)
	return m
}

// ca issues a CA certificate named cn from parent (self-signed when nil),
// with a fresh P-256 key; edit adjusts the template.
func (m *mpki) ca(cn string, parent *mcert, edit func(*x509.Certificate)) *mcert {
	m.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(m.t, err)
	return m.caWithKey(cn, key, parent, edit)
}

func (m *mpki) caWithKey(cn string, key crypto.Signer, parent *mcert, edit func(*x509.Certificate)) *mcert {
	m.t.Helper()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             m.now.Add(-time.Hour),
		NotAfter:              m.now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if edit != nil {
		edit(tmpl)
	}
	return m.sign(tmpl, key, parent)
}

// leafSpec describes a server certificate of the matrix.
type leafSpec struct {
	cns  []string // Common Names, in order (none: no CN attribute)
	dns  []string
	ips  []net.IP
	key  string // keys dimension; "" is P-256
	edit func(*x509.Certificate)
}

// leaf issues a server certificate for s from parent (self-signed when nil).
func (m *mpki) leaf(s leafSpec, parent *mcert) *mcert {
	m.t.Helper()
	key := m.keys[keyP256]
	if s.key != "" {
		key = m.keys[s.key]
	}
	require.NotNil(m.t, key, "key %q", s.key)
	var subject pkix.Name
	for _, cn := range s.cns {
		subject.ExtraNames = append(subject.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: cn})
	}
	ku := x509.KeyUsageDigitalSignature
	if _, ok := key.(*rsa.PrivateKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		Subject:               subject,
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
		NotBefore:             m.now.Add(-time.Hour),
		NotAfter:              m.now.Add(24 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if s.edit != nil {
		s.edit(tmpl)
	}
	return m.sign(tmpl, key, parent)
}

func (m *mpki) sign(tmpl *x509.Certificate, key crypto.Signer, parent *mcert) *mcert {
	m.t.Helper()
	tmpl.SerialNumber = big.NewInt(1000 + m.serial.Add(1))
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	require.NoError(m.t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(m.t, err)
	return &mcert{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// keyPEM is c's private key as PKCS#8 PEM.
func (c *mcert) keyPEM(t *testing.T) []byte {
	t.Helper()
	b, err := certgen.EncodeKeyPEM(c.key)
	require.NoError(t, err)
	return b
}

// rsaPSSLeaf makes a server certificate for localhost whose key is RSA-PSS
// (openssl genpkey -algorithm rsa-pss), signed by parent, with the openssl
// command line: Go can neither generate nor sign for such a key. It returns
// the certificate and key PEM.
func (m *mpki) rsaPSSLeaf(parent *mcert) (certPEM, keyPEM []byte) {
	m.t.Helper()
	o := newOpenSSLPKI(m.t)
	require.NoError(m.t, os.WriteFile(filepath.Join(o.dir, "parent.crt"), parent.pem, 0o600))
	require.NoError(m.t, os.WriteFile(filepath.Join(o.dir, "parent.key"), parent.keyPEM(m.t), 0o600))
	o.issue("pss", "localhost", "rsa-pss", "parent", "server")
	return o.read("pss.crt"), o.read("pss.key")
}

// join concatenates PEM blocks.
func join(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
