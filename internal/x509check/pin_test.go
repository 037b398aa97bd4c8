package x509check

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSPKIPinMatchesOpenSSL compares SPKIPin with the openssl pipeline its
// doc comment quotes.
func TestSPKIPinMatchesOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl is required when CI=true: %v", err)
		}
		t.Skip("openssl is not installed")
	}
	for _, kt := range []certgen.KeyType{certgen.ECDSAP256, certgen.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			p, err := certgen.SelfSigned(certgen.Options{CommonName: "pin", KeyType: kt})
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "cert.pem")
			require.NoError(t, os.WriteFile(path, p.CertPEM, 0o600))
			out, err := exec.Command("sh", "-c", "openssl x509 -in '"+path+"' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64").Output()
			require.NoError(t, err)
			assert.Equal(t, strings.TrimSpace(string(out)), SPKIPin(p.Cert))
		})
	}
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
