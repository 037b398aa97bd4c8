package pgsecure

import (
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMatchHostnameLibpqRules checks each of libpq's verify-full name rules.
func TestMatchHostnameLibpqRules(t *testing.T) {
	ca, err := certgen.NewCA("test CA", certgen.ECDSAP256)
	require.NoError(t, err)
	issue := func(cn string, dns []string, ips ...string) *certgen.Pair {
		o := certgen.Options{CommonName: cn, DNSNames: dns}
		for _, ip := range ips {
			o.IPs = append(o.IPs, net.ParseIP(ip))
		}
		p, err := ca.Issue(o)
		require.NoError(t, err)
		return p
	}
	cases := []struct {
		name  string
		cert  *certgen.Pair
		host  string
		match bool
	}{
		{"SAN DNS exact", issue("ignored", []string{"db.example.com"}), "db.example.com", true},
		{"SAN DNS case-insensitive", issue("", []string{"DB.Example.COM"}), "db.example.com", true},
		{"SAN DNS wrong host", issue("", []string{"db.example.com"}), "other.example.com", false},
		{"CN ignored when DNS SAN present", issue("db.example.com", []string{"other.example.com"}), "db.example.com", false},
		{"CN-only cert (seed style)", issue("db.example.com", nil), "db.example.com", true},
		{"CN-only wrong host", issue("db.example.com", nil), "evil.example.com", false},
		{"wildcard one label", issue("", []string{"*.example.com"}), "db.example.com", true},
		{"wildcard not two labels", issue("", []string{"*.example.com"}), "a.db.example.com", false},
		{"wildcard not apex", issue("", []string{"*.example.com"}), "example.com", false},
		{"wildcard in CN", issue("*.example.com", nil), "db.example.com", true},
		{"IP SAN", issue("", nil, "10.1.2.3"), "10.1.2.3", true},
		{"IP SAN wrong IP", issue("", nil, "10.1.2.3"), "10.1.2.4", false},
		{"IPv6 SAN", issue("", nil, "::1"), "::1", true},
		{"IP host matches CN when only DNS SANs", issue("10.1.2.3", []string{"db.example.com"}), "10.1.2.3", true},
		{"IP host ignores CN when IP SAN present", issue("10.1.2.3", nil, "10.9.9.9"), "10.1.2.3", false},
		{"DNS host does not match IP SAN", issue("", nil, "10.1.2.3"), "db.example.com", false},
		{"DNS host matches CN when only IP SANs", issue("db.example.com", nil, "10.1.2.3"), "db.example.com", true},
		{"IP host matches DNS SAN spelled as IP", issue("", []string{"10.1.2.3"}), "10.1.2.3", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := matchHostname(c.cert.Cert, c.host)
			if c.match {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			var ce *CertificateError
			require.ErrorAs(t, err, &ce)
			assert.ErrorIs(t, err, ErrUntrustedServer)
			assert.ErrorIs(t, err, ErrNotEncrypted)
			assert.Contains(t, err.Error(), c.host, "the error names the host")
			assert.Contains(t, err.Error(), "subjectAltName=", "the error says how to fix the certificate")
		})
	}
}

func TestMatchHostnameNoNames(t *testing.T) {
	ca, err := certgen.NewCA("test CA", certgen.ECDSAP256)
	require.NoError(t, err)
	p, err := ca.Issue(certgen.Options{})
	require.NoError(t, err)
	err = matchHostname(p.Cert, "db.example.com")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "names no host")
	assert.Error(t, matchHostname(p.Cert, ""))
}

func TestWildcardMatch(t *testing.T) {
	assert.True(t, wildcardMatch("*.a.b", "x.a.b"))
	assert.False(t, wildcardMatch("*.a.b", ".a.b"))
	assert.False(t, wildcardMatch("a*.a.b", "ab.a.b"))
	assert.False(t, wildcardMatch("*.", "x."))
	assert.False(t, wildcardMatch("*.a.b", "a.b"))
}

// TestVerifyPeerChainErrors checks that each chain failure is refused with
// an explanation and the right sentinels.
func TestVerifyPeerChainErrors(t *testing.T) {
	ca, err := certgen.NewCA("pinned CA", certgen.ECDSAP256)
	require.NoError(t, err)
	other, err := certgen.NewCA("other CA", certgen.ECDSAP256)
	require.NoError(t, err)
	r, err := parseRoots(ca.CertPEM, "test")
	require.NoError(t, err)
	now := time.Now()
	pol := &tlsPolicy{roots: staticRoots{r: r}, now: func() time.Time { return now }}
	host := "db.example.com"
	mk := func(c *certgen.CA, o certgen.Options) *certgen.Pair {
		if o.DNSNames == nil {
			o.DNSNames = []string{host}
		}
		p, err := c.Issue(o)
		require.NoError(t, err)
		return p
	}
	cases := []struct {
		name, want string
		pair       *certgen.Pair
	}{
		{"other CA", "does not lead to the pinned CA", mk(other, certgen.Options{})},
		{"expired", "expired on", mk(ca, certgen.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})},
		{"not yet valid", "not valid until", mk(ca, certgen.Options{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)})},
		{"client-only EKU", "extended key usage", mk(ca, certgen.Options{Client: true})},
		{"wrong host", "not \"db.example.com\"", mk(ca, certgen.Options{DNSNames: []string{"other.example.com"}})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := pol.verifyPeer(host, []*x509.Certificate{c.pair.Cert})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrUntrustedServer)
			assert.ErrorIs(t, err, ErrNotEncrypted)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), host)
		})
	}
	good := mk(ca, certgen.Options{})
	assert.NoError(t, pol.verifyPeer(host, []*x509.Certificate{good.Cert}))
	assert.Error(t, pol.verifyPeer(host, nil))
	var ce *CertificateError
	require.True(t, errors.As(pol.verifyPeer(host, nil), &ce))
}
