package pgsecure_test

import (
	"crypto/tls"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// insecureSuite returns a TLS 1.2 suite crypto/tls implements but lists as
// insecure, for an ECDSA server key (the test PKI's), by name.
func insecureSuite(t *testing.T, name string) uint16 {
	t.Helper()
	for _, s := range tls.InsecureCipherSuites() {
		if s.Name == name {
			return s.ID
		}
	}
	t.Fatalf("crypto/tls no longer implements %s", name)
	return 0
}

// TestInsecureCipherSuiteRefused: with the TLS configuration's CipherSuites
// set to an insecure suite by a hook that runs after pgsecure's
// BeforeConnect (past its re-check), a peer
// offering only that suite completes the handshake; the local check refuses
// it before the startup message, naming the suite and the fix.
func TestInsecureCipherSuiteRefused(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	pki, cert := localPeerCert(t)
	for _, name := range []string{"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"} {
		t.Run(name, func(t *testing.T) {
			suite := insecureSuite(t, name)
			p := testutil.CipherSuitePeer(t, cert, suite)
			var events eventLog
			cfg, err := pgsecure.NewBuilder(peerDSN(p, "localhost")).RootCAFile(pki.CAFile).OnEvent(events.add).Config(ctx)
			require.NoError(t, err)
			afterPgsecure(cfg, func(cc *pgx.ConnConfig) { cc.TLSConfig.CipherSuites = []uint16{suite} }) // after pgsecure's re-check
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			require.NoError(t, err)
			defer pool.Close()
			err = pool.Ping(ctx)
			require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
			assert.Contains(t, err.Error(), name)
			assert.Contains(t, err.Error(), "CipherSuites")
			assert.Contains(t, err.Error(), "ssl_ciphers")
			assert.Equal(t, []pgsecure.RefusalKind{pgsecure.RefusedTLS}, events.refusals())
			assert.Equal(t, 1, p.Conns(), "the handshake was reached")
			assert.Empty(t, p.Startups(), "no startup message reached the peer")
			assert.Empty(t, p.Decrypted(), "nothing was sent after the handshake")
			assertNoPasswordLeak(t, p)
		})
	}
}
