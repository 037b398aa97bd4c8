package tlspolicy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/verify"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMatchHostnameAdapter: the libpq rules themselves are tested in
// internal/x509check; here, through the tls.Config.VerifyConnection pgsecure
// installs for a host, that a name mismatch is refused as the public
// *verify.CertificateError for the host, with both sentinels and a fix.
func TestMatchHostnameAdapter(t *testing.T) {
	t.Parallel()
	ca, err := certgen.NewCA("test CA", certgen.ECDSAP256)
	require.NoError(t, err)
	issue := func(cn string, dns ...string) *x509.Certificate {
		p, err := ca.Issue(certgen.Options{CommonName: cn, DNSNames: dns})
		require.NoError(t, err)
		return p.Cert
	}
	r, err := parseRoots(ca.CertPEM, "test")
	require.NoError(t, err)
	pol := &Policy{roots: staticRoots{r: r}, now: time.Now}
	verifyHost := func(cert *x509.Certificate, host string) error {
		return pol.ConfigFor(host).VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}})
	}
	assert.NoError(t, verifyHost(issue("", "DB.Example.COM"), "db.example.com"))
	for name, c := range map[string]struct {
		cert *x509.Certificate
		host string
	}{
		"wrong host":                    {issue("", "db.example.com"), "other.example.com"},
		"long s folded by Unicode":      {issue("ſerver.example.com"), "server.example.com"},
		"Kelvin sign folded by Unicode": {issue("\u212Aey.example.com"), "key.example.com"},
		"no host":                       {issue("db.example.com"), ""},
	} {
		t.Run(name, func(t *testing.T) {
			err := verifyHost(c.cert, c.host)
			var ce *verify.CertificateError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, c.host, ce.Host)
			assert.ErrorIs(t, err, shared.ErrUntrustedServer)
			assert.ErrorIs(t, err, shared.ErrNotEncrypted)
			assert.NotEmpty(t, ce.Fix)
		})
	}
}

// TestVerifyPeerChainErrors checks that each chain failure is refused with
// an explanation and the right sentinels.
func TestVerifyPeerChainErrors(t *testing.T) {
	t.Parallel()
	ca, err := certgen.NewCA("pinned CA", certgen.ECDSAP256)
	require.NoError(t, err)
	other, err := certgen.NewCA("other CA", certgen.ECDSAP256)
	require.NoError(t, err)
	r, err := parseRoots(ca.CertPEM, "test")
	require.NoError(t, err)
	now := time.Now()
	pol := &Policy{roots: staticRoots{r: r}, now: func() time.Time { return now }}
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
			err := pol.VerifyPeer(host, []*x509.Certificate{c.pair.Cert})
			require.Error(t, err)
			assert.ErrorIs(t, err, shared.ErrUntrustedServer)
			assert.ErrorIs(t, err, shared.ErrNotEncrypted)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), host)
		})
	}
	good := mk(ca, certgen.Options{})
	assert.NoError(t, pol.VerifyPeer(host, []*x509.Certificate{good.Cert}))
	assert.Error(t, pol.VerifyPeer(host, nil))
	var ce *verify.CertificateError
	require.True(t, errors.As(pol.VerifyPeer(host, nil), &ce))
}
