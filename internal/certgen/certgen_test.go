package certgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test root", ECDSAP256)
	require.NoError(t, err)
	return ca
}

func pool(cas ...*CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

func mustIssue(t *testing.T, ca *CA, o Options) *Pair {
	t.Helper()
	p, err := ca.Issue(o)
	require.NoError(t, err)
	return p
}

func verify(ca *CA, leaf *x509.Certificate, host string) error {
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: host})
	return err
}

func TestKeyTypes(t *testing.T) {
	cases := []struct {
		kt      KeyType
		rsaBits int // 0 => ECDSA P-256
	}{
		{"", 0},
		{ECDSAP256, 0},
		{RSA2048, 2048},
		{RSA4096, 4096},
	}
	for _, c := range cases {
		t.Run(string(c.kt), func(t *testing.T) {
			ca, err := NewCA("root "+string(c.kt), c.kt)
			require.NoError(t, err)
			leaf, err := ca.Issue(Options{CommonName: "db", DNSNames: []string{"db.test"}, KeyType: c.kt})
			require.NoError(t, err)
			for _, k := range []any{ca.Key, leaf.Key} {
				if c.rsaBits == 0 {
					ek, ok := k.(*ecdsa.PrivateKey)
					require.True(t, ok, "want ECDSA key, got %T", k)
					assert.Equal(t, elliptic.P256(), ek.Curve)
				} else {
					rk, ok := k.(*rsa.PrivateKey)
					require.True(t, ok, "want RSA key, got %T", k)
					assert.Equal(t, c.rsaBits, rk.N.BitLen())
				}
			}
			if c.rsaBits != 0 {
				assert.Equal(t, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment, leaf.Cert.KeyUsage)
			} else {
				assert.Equal(t, x509.KeyUsageDigitalSignature, leaf.Cert.KeyUsage)
			}
			parsed, err := ParseKeyPEM(leaf.KeyPEM)
			require.NoError(t, err)
			assert.True(t, publicKeysEqual(leaf.Cert.PublicKey, parsed.Public()))
			block, _ := pem.Decode(leaf.KeyPEM)
			assert.Equal(t, "PRIVATE KEY", block.Type)
			require.NoError(t, verify(ca, leaf.Cert, "db.test"))
		})
	}
}

func TestGenerateKeyRejectsUnknownType(t *testing.T) {
	_, err := GenerateKey("dsa-1024")
	require.ErrorIs(t, err, ErrInvalidOptions)
	assert.Contains(t, err.Error(), "dsa-1024")
	_, err = NewCA("x", "ed448")
	require.ErrorIs(t, err, ErrInvalidOptions)
	_, err = newTestCA(t).Issue(Options{KeyType: "rsa-1"})
	require.ErrorIs(t, err, ErrInvalidOptions)
}

func TestNewCA(t *testing.T) {
	ca := newTestCA(t)
	assert.True(t, ca.Cert.IsCA)
	assert.True(t, ca.Cert.BasicConstraintsValid)
	assert.Equal(t, x509.KeyUsageCertSign|x509.KeyUsageCRLSign, ca.Cert.KeyUsage)
	assert.Equal(t, "test root", ca.Cert.Subject.CommonName)
	assert.Equal(t, caValidity+backdate, ca.Cert.NotAfter.Sub(ca.Cert.NotBefore))
	require.NoError(t, ca.Cert.CheckSignatureFrom(ca.Cert))
	block, _ := pem.Decode(ca.CertPEM)
	require.NotNil(t, block)
	assert.Equal(t, ca.Cert.Raw, block.Bytes)

	_, err := NewCA("", ECDSAP256)
	require.ErrorIs(t, err, ErrInvalidOptions)
}

func TestIssueSANsExactlyAsGiven(t *testing.T) {
	ca := newTestCA(t)
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	leaf, err := ca.Issue(Options{CommonName: "primary", DNSNames: []string{"localhost", "db.test"}, IPs: ips})
	require.NoError(t, err)
	assert.Equal(t, "primary", leaf.Cert.Subject.CommonName)
	assert.Equal(t, []string{"localhost", "db.test"}, leaf.Cert.DNSNames)
	require.Len(t, leaf.Cert.IPAddresses, 2)
	assert.True(t, leaf.Cert.IPAddresses[0].Equal(ips[0]))
	assert.True(t, leaf.Cert.IPAddresses[1].Equal(ips[1]))
	assert.False(t, leaf.Cert.IsCA)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, leaf.Cert.ExtKeyUsage)
	require.NoError(t, verify(ca, leaf.Cert, "localhost"))
	require.NoError(t, verify(ca, leaf.Cert, "127.0.0.1"))
	require.NoError(t, verify(ca, leaf.Cert, "::1"))
	require.Error(t, verify(ca, leaf.Cert, "primary"), "the CN must not act as a SAN")
	require.Error(t, verify(ca, leaf.Cert, "127.0.0.2"))
}

func TestIssueCommonNameOnlyFailsHostnameCheck(t *testing.T) {
	ca := newTestCA(t)
	leaf, err := ca.Issue(Options{CommonName: "localhost"})
	require.NoError(t, err)
	assert.Empty(t, leaf.Cert.DNSNames)
	assert.Empty(t, leaf.Cert.IPAddresses)
	err = verify(ca, leaf.Cert, "localhost")
	var he x509.HostnameError
	require.ErrorAs(t, err, &he)
	assert.Contains(t, err.Error(), "legacy Common Name")
}

func TestIssueWildcard(t *testing.T) {
	ca := newTestCA(t)
	leaf, err := ca.Issue(Options{DNSNames: []string{"*.db.test"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"*.db.test"}, leaf.Cert.DNSNames)
	require.NoError(t, verify(ca, leaf.Cert, "primary.db.test"))
	require.Error(t, verify(ca, leaf.Cert, "a.primary.db.test"))
	require.Error(t, verify(ca, leaf.Cert, "db.test"))
}

func TestIssueValidityWindows(t *testing.T) {
	ca := newTestCA(t)
	past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	future := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]Options{
		"expired":       {NotBefore: past, NotAfter: past.AddDate(1, 0, 0)},
		"not-yet-valid": {NotBefore: future, NotAfter: future.AddDate(1, 0, 0)},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			o.DNSNames = []string{"localhost"}
			leaf, err := ca.Issue(o)
			require.NoError(t, err)
			assert.True(t, leaf.Cert.NotBefore.Equal(o.NotBefore))
			assert.True(t, leaf.Cert.NotAfter.Equal(o.NotAfter))
			err = verify(ca, leaf.Cert, "localhost")
			var ie x509.CertificateInvalidError
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, x509.Expired, ie.Reason)
		})
	}
	_, err := ca.Issue(Options{NotBefore: future, NotAfter: past})
	require.ErrorIs(t, err, ErrInvalidOptions)
}

func TestIssueDefaultsAndOverrides(t *testing.T) {
	ca := newTestCA(t)
	a, b := mustIssue(t, ca, Options{}), mustIssue(t, ca, Options{})
	assert.Equal(t, leafValidity+backdate, a.Cert.NotAfter.Sub(a.Cert.NotBefore))
	assert.Positive(t, a.Cert.SerialNumber.Sign())
	assert.LessOrEqual(t, a.Cert.SerialNumber.BitLen(), 129)
	assert.NotEqual(t, a.Cert.SerialNumber, b.Cert.SerialNumber)

	client := mustIssue(t, ca, Options{CommonName: "app", Client: true})
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, client.Cert.ExtKeyUsage)

	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	over := mustIssue(t, ca, Options{Client: true, ExtKeyUsages: both, SerialNumber: big.NewInt(4242)})
	assert.Equal(t, both, over.Cert.ExtKeyUsage)
	assert.Equal(t, int64(4242), over.Cert.SerialNumber.Int64())

	_, err := (*CA)(nil).Issue(Options{})
	require.ErrorIs(t, err, ErrInvalidOptions)
}

func TestIntermediateChainVerifies(t *testing.T) {
	root := newTestCA(t)
	inter, err := NewIntermediate(root, "test intermediate", RSA2048)
	require.NoError(t, err)
	assert.True(t, inter.Cert.IsCA)
	assert.True(t, inter.Cert.MaxPathLenZero)
	assert.False(t, inter.Cert.NotAfter.After(root.Cert.NotAfter))
	require.NoError(t, inter.Cert.CheckSignatureFrom(root.Cert))

	leaf, err := inter.Issue(Options{DNSNames: []string{"localhost"}})
	require.NoError(t, err)
	_, err = leaf.Cert.Verify(x509.VerifyOptions{Roots: pool(root), Intermediates: pool(inter), DNSName: "localhost"})
	require.NoError(t, err)
	_, err = leaf.Cert.Verify(x509.VerifyOptions{Roots: pool(root), DNSName: "localhost"})
	var ua x509.UnknownAuthorityError
	require.ErrorAs(t, err, &ua, "without the intermediate the chain must not verify")

	chain := leaf.ChainPEM(inter)
	first, rest := pem.Decode(chain)
	second, rest := pem.Decode(rest)
	require.NotNil(t, first)
	require.NotNil(t, second)
	assert.Empty(t, strings.TrimSpace(string(rest)))
	assert.Equal(t, leaf.Cert.Raw, first.Bytes)
	assert.Equal(t, inter.Cert.Raw, second.Bytes)

	// A path-length-0 intermediate must not be able to create a valid sub-CA.
	sub, err := NewIntermediate(inter, "too deep", ECDSAP256)
	require.NoError(t, err)
	deep, err := sub.Issue(Options{DNSNames: []string{"localhost"}})
	require.NoError(t, err)
	_, err = deep.Cert.Verify(x509.VerifyOptions{Roots: pool(root), Intermediates: pool(inter, sub), DNSName: "localhost"})
	require.Error(t, err)

	_, err = NewIntermediate(nil, "orphan", ECDSAP256)
	require.ErrorIs(t, err, ErrInvalidOptions)
}

func TestSelfSigned(t *testing.T) {
	seed, err := SelfSigned(Options{CommonName: "localhost", KeyType: RSA2048})
	require.NoError(t, err)
	assert.True(t, seed.Cert.IsCA, "openssl req -x509 produces CA:TRUE")
	assert.NotZero(t, seed.Cert.KeyUsage&x509.KeyUsageCertSign)
	assert.Empty(t, seed.Cert.DNSNames)
	assert.Empty(t, seed.Cert.IPAddresses)
	self := &CA{Cert: seed.Cert}
	require.NoError(t, seed.Cert.CheckSignatureFrom(seed.Cert))
	var he x509.HostnameError
	require.ErrorAs(t, verify(self, seed.Cert, "localhost"), &he, "CN-only self-signed cert must fail Go's hostname check")

	withSAN, err := SelfSigned(Options{CommonName: "localhost", DNSNames: []string{"localhost"}})
	require.NoError(t, err)
	require.NoError(t, verify(&CA{Cert: withSAN.Cert}, withSAN.Cert, "localhost"))
}

func TestTLSCertificateHandshake(t *testing.T) {
	root := newTestCA(t)
	inter, err := NewIntermediate(root, "inter", ECDSAP256)
	require.NoError(t, err)
	leaf, err := inter.Issue(Options{DNSNames: []string{"localhost"}})
	require.NoError(t, err)
	cert, err := leaf.TLSCertificateWithChain(inter)
	require.NoError(t, err)
	require.Len(t, cert.Certificate, 2)

	srvConn, cliConn := net.Pipe()
	defer srvConn.Close()
	defer cliConn.Close()
	srvErr := make(chan error, 1)
	go func() {
		srvErr <- tls.Server(srvConn, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
	}()
	cli := tls.Client(cliConn, &tls.Config{RootCAs: pool(root), ServerName: "localhost"})
	require.NoError(t, cli.Handshake())
	require.NoError(t, <-srvErr)
	assert.Equal(t, leaf.Cert.Raw, cli.ConnectionState().PeerCertificates[0].Raw)

	single, err := leaf.TLSCertificate()
	require.NoError(t, err)
	assert.Len(t, single.Certificate, 1)
	assert.Same(t, leaf.Cert, single.Leaf)
	_, err = (&Pair{}).TLSCertificate()
	require.ErrorIs(t, err, ErrInvalidOptions)
}

func TestSPKIPin(t *testing.T) {
	ca := newTestCA(t)
	a, b := mustIssue(t, ca, Options{}), mustIssue(t, ca, Options{})
	der, err := x509.MarshalPKIXPublicKey(a.Key.Public())
	require.NoError(t, err)
	sum := sha256.Sum256(der)
	assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), SPKIPin(a.Cert))
	assert.Len(t, SPKIPin(a.Cert), 44)
	assert.NotEqual(t, SPKIPin(a.Cert), SPKIPin(b.Cert))
}

func TestLoadCA(t *testing.T) {
	ca := newTestCA(t)
	loaded, err := LoadCA(ca.CertPEM, ca.KeyPEM)
	require.NoError(t, err)
	leaf, err := loaded.Issue(Options{DNSNames: []string{"localhost"}})
	require.NoError(t, err)
	require.NoError(t, verify(ca, leaf.Cert, "localhost"))

	_, err = LoadCA(leaf.CertPEM, leaf.KeyPEM)
	require.ErrorIs(t, err, ErrInvalidOptions, "a leaf is not a CA")
	_, err = LoadCA(nil, ca.KeyPEM)
	require.ErrorIs(t, err, ErrInvalidOptions)
}

func TestErrorsNeverContainKeyMaterial(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	block, _ := pem.Decode(other.KeyPEM)
	body := base64.StdEncoding.EncodeToString(block.Bytes)
	corrupt := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: block.Bytes[:len(block.Bytes)-7]})
	wrongType := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: block.Bytes})

	_, errMismatch := LoadCA(ca.CertPEM, other.KeyPEM)
	_, errCorrupt := ParseKeyPEM(corrupt)
	_, errType := ParseKeyPEM(wrongType)
	_, errNoPEM := ParseKeyPEM([]byte(body))
	for _, err := range []error{errMismatch, errCorrupt, errType, errNoPEM} {
		require.Error(t, err)
		msg := err.Error()
		assert.True(t, strings.HasPrefix(msg, "pgsecure/certgen:"), msg)
		assert.NotContains(t, msg, body[:16])
		assert.NotContains(t, msg, string(block.Bytes[len(block.Bytes)-40:]))
	}
	assert.True(t, errors.Is(errMismatch, ErrInvalidOptions))
	assert.True(t, errors.Is(errType, ErrInvalidOptions))
}
