package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTrySetServerCert: a pair the server can load is served; a pair it
// cannot (a key that does not match) is reported with the server's reason,
// and the previous certificate stays in service.
func TestTrySetServerCert(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	_, _, first := pki.Server(t, LocalServerOptions())
	pg := StartPostgres(t, PGOptions{ServerCertPEM: first.CertPEM, ServerKeyPEM: first.KeyPEM})
	leaf := func(ctx context.Context, addr string) ([]byte, error) {
		chain, err := ServerCertificates(ctx, addr)
		if err != nil {
			return nil, err
		}
		return chain[0].Raw, nil
	}

	_, _, second := pki.Server(t, LocalServerOptions())
	require.NoError(t, pg.TrySetServerCert(t, second.CertPEM, second.KeyPEM, 10*time.Second, leaf))

	_, _, third := pki.Server(t, LocalServerOptions())
	err := pg.TrySetServerCert(t, third.CertPEM, first.KeyPEM, 2*time.Second, leaf)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "SSL configuration was not reloaded")
	served, err := leaf(testCtx(t), pg.Addr())
	require.NoError(t, err)
	assert.Equal(t, second.Cert.Raw, served, "the server keeps the certificate it could load")
}
