package tlspolicy

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/x509check"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSystemStoreRootsSortsLikeLibpq: sslrootcert=system reads
// SSL_CERT_FILE and SSL_CERT_DIR, and, as libpq's store, trusts only the
// self-signed certificates there; the others complete paths.
func TestSystemStoreRootsSortsLikeLibpq(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the system's CA files are read directly on Linux only")
	}
	root, err := certgen.NewCA("system test root", certgen.ECDSAP256)
	require.NoError(t, err)
	inter, err := certgen.NewIntermediate(root, "system test intermediate", certgen.ECDSAP256)
	require.NoError(t, err)
	leaf, err := inter.Issue(certgen.Options{DNSNames: []string{"db.example"}})
	require.NoError(t, err)
	dir := t.TempDir()
	file := filepath.Join(dir, "bundle.pem")
	require.NoError(t, os.WriteFile(file, append(append([]byte("text before\n"), inter.CertPEM...), root.CertPEM...), 0o600))
	certDir := filepath.Join(dir, "certs")
	require.NoError(t, os.Mkdir(certDir, 0o700))
	t.Setenv("SSL_CERT_FILE", file)
	t.Setenv("SSL_CERT_DIR", certDir)

	r, ok := systemStoreRoots()
	require.True(t, ok)
	chains, err := x509check.VerifyChain([]*x509.Certificate{leaf.Cert}, *r, time.Now())
	require.NoError(t, err, "the intermediate beside the root completes the leaf's path")
	assert.Equal(t, root.Cert.Raw, chains[0][len(chains[0])-1].Raw)

	require.NoError(t, os.WriteFile(file, inter.CertPEM, 0o600))
	r, ok = systemStoreRoots()
	require.True(t, ok)
	_, err = x509check.VerifyChain([]*x509.Certificate{leaf.Cert}, *r, time.Now())
	require.ErrorContains(t, err, `holds only the intermediate CA "CN=system test intermediate"`)

	// The directory is read too, as OpenSSL's default certificate directory.
	require.NoError(t, os.WriteFile(filepath.Join(certDir, "root.pem"), root.CertPEM, 0o600))
	r, ok = systemStoreRoots()
	require.True(t, ok)
	_, err = x509check.VerifyChain([]*x509.Certificate{leaf.Cert}, *r, time.Now())
	require.NoError(t, err)
}
