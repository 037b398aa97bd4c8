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

// TestCNHostName: which Common Names OpenSSL's cn2dnsid treats as host
// names (and so checks against DNS name constraints).
func TestCNHostName(t *testing.T) {
	for cn, want := range map[string]bool{
		"db.example.com": true, "127.0.0.1": true, "a_b.c": true, "a-b.c": true, "DB.Example.COM": true,
		"localhost": false, "*.example.com": false, "-a.b": false, "a.b-": false, "a..b": false,
		"a.-b": false, "a-.b": false, ".a.b": false, "a.b.": false, "db.ex ample": false, "dé.example": false, "": false,
	} {
		name, ok, nul := cnHostName(commonName{tag: 12, bytes: []byte(cn)})
		assert.Equal(t, want, ok, "%q", cn)
		assert.False(t, nul)
		if ok {
			assert.Equal(t, cn, name)
		}
	}
	_, ok, _ := cnHostName(commonName{tag: int(tagBMPString), bytes: []byte{0, 'a', 0, '.', 0, 'b'}})
	assert.True(t, ok, "a BMPString CN is converted to UTF-8 first")
	_, ok, nul := cnHostName(commonName{tag: 12, bytes: []byte("a.b\x00\x00")})
	assert.True(t, ok && !nul, "trailing NUL bytes are dropped")
	_, _, nul = cnHostName(commonName{tag: 12, bytes: []byte("a.b\x00.evil")})
	assert.True(t, nul, "an embedded NUL byte is reported")
}

// TestNCDNS: OpenSSL's nc_dns subtree match.
func TestNCDNS(t *testing.T) {
	for _, c := range []struct {
		name, base string
		want       bool
	}{
		{"db.example.com", "example.com", true}, {"example.com", "example.com", true},
		{"DB.EXAMPLE.COM", "example.com", true}, {"dbexample.com", "example.com", false},
		{"db.example.com", ".example.com", true}, {"example.com", ".example.com", false},
		{"com", "example.com", false}, {"anything.test", "", true},
	} {
		assert.Equal(t, c.want, ncDNS(c.name, c.base), "%q under %q", c.name, c.base)
	}
}

// TestCheckCommonNameConstraints: permitted and excluded DNS constraints
// apply to a host-like CN when the leaf has no DNS SAN, never otherwise.
func TestCheckCommonNameConstraints(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	mk := func(tmpl *x509.Certificate, parent *x509.Certificate) *x509.Certificate {
		tmpl.SerialNumber = big.NewInt(1)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, key)
		require.NoError(t, err)
		c, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return c
	}
	ca := func(permitted, excluded []string) *x509.Certificate {
		return mk(&x509.Certificate{Subject: pkix.Name{CommonName: "nc"}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign, PermittedDNSDomains: permitted, ExcludedDNSDomains: excluded}, nil)
	}
	leaf := func(cn string, dns ...string) *x509.Certificate {
		return mk(&x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}, ca(nil, nil))
	}
	permitted, excluded := ca([]string{"example.com"}, nil), ca(nil, []string{"evil.test"})
	for _, c := range []struct {
		name string
		leaf *x509.Certificate
		ca   *x509.Certificate
		ok   bool
	}{
		{"CN inside permitted", leaf("db.example.com"), permitted, true},
		{"CN outside permitted", leaf("db.evil.test"), permitted, false},
		{"single-label CN is not checked", leaf("evil"), permitted, true},
		{"wildcard CN is not checked", leaf("*.evil.test"), permitted, true},
		{"CN inside excluded", leaf("db.evil.test"), excluded, false},
		{"CN outside excluded", leaf("db.example.com"), excluded, true},
		{"DNS SAN present: CN not checked", leaf("db.evil.test", "db.example.com"), permitted, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			kept, err := CheckCommonNameConstraints([][]*x509.Certificate{{c.leaf, c.ca}})
			if c.ok {
				assert.NoError(t, err)
				assert.Len(t, kept, 1)
				return
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Contains(t, e.Problem, `Common Name "db.evil.test"`)
			assert.Contains(t, e.Fix, "reissue the server certificate")
		})
	}
}
