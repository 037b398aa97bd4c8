package connect

import (
	"crypto/tls"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCipherProblem: the suite must be one tls.CipherSuites lists, the key
// exchange group one crypto/tls implements. Go's TLS stack cannot be made
// to negotiate an unimplemented group, so that half is tested on the
// connection state alone.
func TestCipherProblem(t *testing.T) {
	for _, c := range []struct {
		name  string
		st    tls.ConnectionState
		wants string // "" when accepted
	}{
		{"TLS 1.3, X25519MLKEM768", tls.ConnectionState{CipherSuite: tls.TLS_AES_128_GCM_SHA256, CurveID: tls.X25519MLKEM768}, ""},
		{"TLS 1.2 ECDHE, P-256", tls.ConnectionState{CipherSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, CurveID: tls.CurveP256}, ""},
		{"RC4", tls.ConnectionState{CipherSuite: tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA, CurveID: tls.X25519}, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"},
		{"3DES", tls.ConnectionState{CipherSuite: tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, CurveID: tls.X25519}, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"},
		{"unknown suite", tls.ConnectionState{CipherSuite: 0x0005}, "0x0005"},
		{"ffdhe2048", tls.ConnectionState{CipherSuite: tls.TLS_AES_128_GCM_SHA256, CurveID: 256}, "key exchange"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := cipherProblem(c.st)
			if c.wants == "" {
				assert.Empty(t, got)
				return
			}
			assert.Contains(t, got, c.wants)
			assert.Contains(t, got, "TLSConfig.CipherSuites")
		})
	}
}
