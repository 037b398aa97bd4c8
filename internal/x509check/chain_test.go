package x509check

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pki is a root, an intermediate and a leaf the intermediate issued.
type pki struct {
	root, inter *certgen.CA
	leaf        *certgen.Pair
}

func newPKI(t *testing.T) pki {
	t.Helper()
	root, err := certgen.NewCA("test root", certgen.ECDSAP256)
	require.NoError(t, err)
	inter, err := certgen.NewIntermediate(root, "test intermediate", certgen.ECDSAP256)
	require.NoError(t, err)
	leaf, err := inter.Issue(certgen.Options{CommonName: "db", DNSNames: []string{"db.example"}})
	require.NoError(t, err)
	return pki{root: root, inter: inter, leaf: leaf}
}

// rootsOf is an sslrootcert file holding certs, as pgsecure reads one.
func rootsOf(certs ...*x509.Certificate) Roots { return NewRoots(certs) }

// TestVerifyChainTrustAnchors: libpq's rule (issue 15.1), every verified
// chain ends in a self-signed certificate.
func TestVerifyChainTrustAnchors(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	withInter := []*x509.Certificate{p.leaf.Cert, p.inter.Cert}
	withRoot := []*x509.Certificate{p.leaf.Cert, p.inter.Cert, p.root.Cert}

	chains, err := VerifyChain(withInter, rootsOf(p.root.Cert), now)
	require.NoError(t, err)
	require.Len(t, chains, 1)
	assert.Equal(t, p.root.Cert, chains[0][2])

	chains, err = VerifyChain(withInter, rootsOf(p.inter.Cert, p.root.Cert), now)
	require.NoError(t, err, "root and intermediate both trusted")
	for _, c := range chains {
		assert.True(t, SelfSigned(c[len(c)-1]), "only chains ending in the root are kept")
	}

	for name, presented := range map[string][]*x509.Certificate{"server sends intermediate": withInter, "server sends root too": withRoot} {
		t.Run("intermediate pinned alone/"+name, func(t *testing.T) {
			_, err := VerifyChain(presented, rootsOf(p.inter.Cert), now)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Contains(t, e.Problem, `sslrootcert holds only the intermediate CA "CN=test intermediate"`)
			assert.Contains(t, e.Fix, `add the root CA certificate (subject "CN=test root")`)
		})
	}

	// Issue 19.1: the pinned file completes the path (a CA bundle), the
	// server sends only its leaf.
	leafOnly := []*x509.Certificate{p.leaf.Cert}
	for name, pinned := range map[string][]*x509.Certificate{
		"root then intermediate": {p.root.Cert, p.inter.Cert}, "intermediate then root": {p.inter.Cert, p.root.Cert}} {
		t.Run("leaf only sent, bundle pinned: "+name, func(t *testing.T) {
			chains, err := VerifyChain(leafOnly, rootsOf(pinned...), now)
			require.NoError(t, err)
			require.Len(t, chains, 1)
			assert.Equal(t, []*x509.Certificate{p.leaf.Cert, p.inter.Cert, p.root.Cert}, chains[0])
		})
	}
	t.Run("leaf only sent, intermediate pinned alone", func(t *testing.T) {
		_, err := VerifyChain(leafOnly, rootsOf(p.inter.Cert), now)
		require.ErrorContains(t, err, `sslrootcert holds only the intermediate CA "CN=test intermediate"`)
	})
	t.Run("leaf only sent, root pinned alone", func(t *testing.T) {
		_, err := VerifyChain(leafOnly, rootsOf(p.root.Cert), now)
		require.ErrorContains(t, err, `issued by "CN=test intermediate", which does not lead to the pinned CA`)
	})

	t.Run("issued leaf pinned as its own root", func(t *testing.T) {
		_, err := VerifyChain([]*x509.Certificate{p.leaf.Cert}, rootsOf(p.leaf.Cert), now)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "holds the server certificate itself, which is not self-signed")
	})
	t.Run("self-signed leaf pinned (openssl req -x509)", func(t *testing.T) {
		self, err := certgen.SelfSigned(certgen.Options{CommonName: "db", DNSNames: []string{"db.example"}})
		require.NoError(t, err)
		_, err = VerifyChain([]*x509.Certificate{self.Cert}, rootsOf(self.Cert), now)
		assert.NoError(t, err)
	})
}

func TestVerifyChainErrors(t *testing.T) {
	ca, err := certgen.NewCA("pinned CA", certgen.ECDSAP256)
	require.NoError(t, err)
	other, err := certgen.NewCA("other CA", certgen.ECDSAP256)
	require.NoError(t, err)
	twin, err := certgen.NewCA("pinned CA", certgen.ECDSAP256)
	require.NoError(t, err)
	now := time.Now()
	mk := func(c *certgen.CA, o certgen.Options) *x509.Certificate {
		o.DNSNames = []string{"db.example.com"}
		p, err := c.Issue(o)
		require.NoError(t, err)
		return p.Cert
	}
	cases := map[string]struct {
		cert *x509.Certificate
		want string
	}{
		"other CA":        {mk(other, certgen.Options{}), "does not lead to the pinned CA"},
		"same-name CA":    {mk(twin, certgen.Options{}), "same name, different key"},
		"expired":         {mk(ca, certgen.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}), "expired on"},
		"not yet valid":   {mk(ca, certgen.Options{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)}), "not valid until"},
		"client-only EKU": {mk(ca, certgen.Options{Client: true}), "extended key usage"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := VerifyChain([]*x509.Certificate{c.cert}, rootsOf(ca.Cert), now)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Contains(t, e.Problem, c.want)
			assert.NotEmpty(t, e.Fix)
			assert.Equal(t, []string{"db.example.com"}, e.Names)
		})
	}
	_, err = VerifyChain(nil, rootsOf(ca.Cert), now)
	assert.ErrorContains(t, err, "presented no certificate")
	_, err = VerifyChain([]*x509.Certificate{mk(ca, certgen.Options{})}, Roots{}, now)
	assert.ErrorContains(t, err, "no CA to verify it against")
}

func TestCheckPins(t *testing.T) {
	p := newPKI(t)
	chains, err := VerifyChain([]*x509.Certificate{p.leaf.Cert, p.inter.Cert}, rootsOf(p.root.Cert), time.Now())
	require.NoError(t, err)
	stranger, err := certgen.NewCA("stranger", certgen.ECDSAP256)
	require.NoError(t, err)
	other := SPKIPin(stranger.Cert)
	for name, c := range map[string]*x509.Certificate{"leaf": p.leaf.Cert, "intermediate": p.inter.Cert, "root not sent": p.root.Cert} {
		assert.NoError(t, CheckPins(chains, []string{other, SPKIPin(c)}), name)
	}
	assert.NoError(t, CheckPins(chains, nil), "no pins, no pinning")

	err = CheckPins(chains, []string{other})
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "CN=db", e.Subject)
	assert.Equal(t, []string{"db.example"}, e.Names)
	for _, want := range []string{SPKIPin(p.leaf.Cert), SPKIPin(p.inter.Cert), SPKIPin(p.root.Cert), other} {
		assert.Contains(t, e.Problem, want)
	}
}

// TestCheckPinsIgnoresCertificatesOffThePath shows why pins are checked
// against the verified chain: a server holding a certificate from a trusted
// CA must not pass by also sending the pinned certificate, which is public.
func TestCheckPinsIgnoresCertificatesOffThePath(t *testing.T) {
	trusted, err := certgen.NewCA("trusted", certgen.ECDSAP256)
	require.NoError(t, err)
	pinnedCA, err := certgen.NewCA("pinned", certgen.ECDSAP256)
	require.NoError(t, err)
	impostor, err := trusted.Issue(certgen.Options{CommonName: "db", DNSNames: []string{"db.example"}})
	require.NoError(t, err)
	presented := []*x509.Certificate{impostor.Cert, pinnedCA.Cert}
	chains, err := VerifyChain(presented, rootsOf(trusted.Cert, pinnedCA.Cert), time.Now())
	require.NoError(t, err)
	err = CheckPins(chains, []string{SPKIPin(pinnedCA.Cert)})
	var e *Error
	require.ErrorAs(t, err, &e)
}

// TestSPKIPinIsSHA256OfSPKI pins the definition; the root package checks
// the same value against openssl (TestSPKIPinMatchesOpenSSL).
func TestSPKIPinIsSHA256OfSPKI(t *testing.T) {
	c := &x509.Certificate{RawSubjectPublicKeyInfo: []byte("abc")}
	// echo -n abc | openssl dgst -sha256 -binary | base64
	assert.Equal(t, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", SPKIPin(c))
}
