package x509check

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStoreContinuity: once the path reaches a pinned certificate, libpq
// (OpenSSL, trusted-first) completes it from the pinned file alone.
func TestStoreContinuity(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	// A pinned intermediate above the root's direct child: pinned root and
	// intermediate, the server sends the leaf only: the path leaf → inter
	// (pinned) → root (pinned) stays in the store.
	_, err := VerifyChain([]*x509.Certificate{p.leaf.Cert}, rootsOf(p.inter.Cert, p.root.Cert), now)
	require.NoError(t, err)

	// Pinned: the intermediate and some unrelated root; the server sends
	// its intermediate and the real root: the path leaves the store after
	// the pinned intermediate.
	other, err := certgen.NewCA("unrelated root", certgen.ECDSAP256)
	require.NoError(t, err)
	roots := rootsOf(p.inter.Cert, other.Cert)
	chains := [][]*x509.Certificate{{p.leaf.Cert, p.inter.Cert, p.root.Cert}}
	_, err = StoreContinuity(chains, roots)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Contains(t, e.Problem, `sslrootcert holds the CA "CN=test intermediate" but not its issuer "CN=test root"`)
	assert.Contains(t, e.Fix, `add the CA certificate "CN=test root"`)

	kept, err := StoreContinuity(chains, rootsOf(p.root.Cert))
	require.NoError(t, err, "a path that enters the store at the root is whole")
	assert.Len(t, kept, 1)
	kept, err = StoreContinuity(chains, Roots{})
	require.NoError(t, err, "roots not made by NewRoots keep every chain")
	assert.Len(t, kept, 1)
}

// TestCheckServerPurpose: an extendedKeyUsage without serverAuth is
// refused anywhere in the chain, anyExtendedKeyUsage included.
func TestCheckServerPurpose(t *testing.T) {
	ca, err := certgen.NewCA("purpose root", certgen.ECDSAP256)
	require.NoError(t, err)
	issue := func(eku []x509.ExtKeyUsage) *x509.Certificate {
		pair, err := ca.Issue(certgen.Options{CommonName: "db", DNSNames: []string{"db.example"}, ExtKeyUsages: eku})
		require.NoError(t, err)
		return pair.Cert
	}
	for name, c := range map[string]struct {
		eku []x509.ExtKeyUsage
		ok  bool
	}{
		"serverAuth":          {[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, true},
		"no extension":        {[]x509.ExtKeyUsage{}, true},
		"anyExtendedKeyUsage": {[]x509.ExtKeyUsage{x509.ExtKeyUsageAny}, false},
		"clientAuth":          {[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := CheckServerPurpose([][]*x509.Certificate{{issue(c.eku), ca.Cert}})
			if c.ok {
				assert.NoError(t, err)
				return
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Contains(t, e.Problem, "does not list serverAuth")
			assert.Equal(t, "reissue it with extendedKeyUsage=serverAuth", e.Fix)
		})
	}
}
