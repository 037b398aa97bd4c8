package pgsecure_test

import (
	"os"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCAFileReloadedAsBundle (issue 19.1): a RootCAFile rewritten while the
// pool runs is read as libpq reads it, the self-signed root as the anchor
// and the intermediate beside it as a step of the path, so a server that
// sends only its leaf is trusted after the rotation; an intermediate
// written alone is refused with the fix.
func TestCAFileReloadedAsBundle(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	caFile := privateCopy(t, "ca.crt", testutil.ReadFixture(t, "", pki.CAFile)) // rewritten below
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(caFile).MaxConns(4).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	root, err := certgen.NewCA("rotated root", certgen.ECDSAP256)
	require.NoError(t, err)
	inter, err := certgen.NewIntermediate(root, "rotated intermediate", certgen.ECDSAP256)
	require.NoError(t, err)
	leaf, err := inter.Issue(testutil.LocalServerOptions())
	require.NoError(t, err)
	pg.SetServerCert(t, leaf.CertPEM, leaf.KeyPEM) // the leaf alone, no intermediate

	rewrite := func(pem []byte, at time.Duration) {
		require.NoError(t, os.WriteFile(caFile, pem, 0o600))
		stamp := time.Now().Add(at)
		require.NoError(t, os.Chtimes(caFile, stamp, stamp))
	}
	rewrite(inter.CertPEM, 2*time.Second)
	pool.Reset() // drop Build's idle connection: the next Acquire dials
	c, err := pool.Acquire(ctx)
	if err == nil {
		c.Release()
	}
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer)
	assert.Contains(t, err.Error(), `holds only the intermediate CA "CN=rotated intermediate"`)
	assert.Contains(t, err.Error(), `add the root CA certificate (subject "CN=rotated root")`)

	rewrite(append(append([]byte{}, inter.CertPEM...), root.CertPEM...), 4*time.Second)
	pool.Reset()
	c, err = pool.Acquire(ctx)
	require.NoError(t, err, "the reloaded root+intermediate bundle completes the leaf's path")
	defer c.Release()
	r, err := pgsecure.ConnReport(c.Conn())
	require.NoError(t, err)
	assert.Equal(t, leaf.Cert.SerialNumber.String(), r.Leaf().SerialNumber)
}
