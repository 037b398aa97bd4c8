package pgsecure

import (
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pinCertFile is a certificate fixture whose pin openssl computed when it
// was generated (pinCertFile + ".pin"; see testdata/keys/README).
const pinCertFile = "pin-vector.crt"

func TestSPKIPinFixedVector(t *testing.T) {
	want := strings.TrimSpace(string(readFixture(t, keysDir(), pinCertFile+".pin")))
	require.Len(t, want, 44)
	got, err := SPKIPin(readFixture(t, keysDir(), pinCertFile))
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestSPKIPinMatchesOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		skipWithoutTool(t, "openssl is not installed; TestSPKIPinFixedVector checks a vector it computed")
	}
	for _, kt := range []certgen.KeyType{certgen.ECDSAP256, certgen.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			p, err := certgen.SelfSigned(certgen.Options{CommonName: "pin", KeyType: kt})
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "cert.pem")
			require.NoError(t, os.WriteFile(path, p.CertPEM, 0o600))
			out, err := exec.Command("sh", "-c", "openssl x509 -in '"+path+"' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64").Output()
			require.NoError(t, err)
			got, err := SPKIPin(p.CertPEM)
			require.NoError(t, err)
			assert.Equal(t, strings.TrimSpace(string(out)), got)
		})
	}
}

func TestSPKIPinUsesFirstCertificate(t *testing.T) {
	a, err := certgen.SelfSigned(certgen.Options{CommonName: "a"})
	require.NoError(t, err)
	b, err := certgen.SelfSigned(certgen.Options{CommonName: "b"})
	require.NoError(t, err)
	got, err := SPKIPin(append(append([]byte(nil), a.CertPEM...), b.CertPEM...))
	require.NoError(t, err)
	assert.Equal(t, certgen.SPKIPin(a.Cert), got)

	_, err = SPKIPin(a.KeyPEM)
	require.ErrorIs(t, err, ErrInsecureConfig)
	assert.Contains(t, err.Error(), `no PEM "CERTIFICATE" block`)
}

func TestParsePins(t *testing.T) {
	ca := testCA(t)
	good := certgen.SPKIPin(ca.Cert)
	require.NoError(t, parsePins([]string{good}))
	require.NoError(t, parsePins([]string{good, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}))
	cases := map[string]struct {
		pins []string
		want string
	}{
		"none":          {nil, "no pin given"},
		"curl prefix":   {[]string{"sha256//" + good}, "HPKP/curl prefix"},
		"hex":           {[]string{strings.Repeat("ab", 32)}, "hexadecimal"},
		"not base64":    {[]string{"not a pin!"}, "not standard base64"},
		"url alphabet":  {[]string{strings.NewReplacer("+", "-", "/", "_").Replace("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")}, "not standard base64"},
		"wrong length":  {[]string{"AAAA"}, "decodes to 3 bytes"},
		"one bad among": {[]string{good, "AAAA"}, `pin "AAAA"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := parsePins(c.pins)
			require.ErrorIs(t, err, ErrInsecureConfig)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "SPKIPin")
		})
	}
}

// pinChain is a root, an intermediate and a server leaf, verified.
type pinChain struct {
	root, inter *certgen.CA
	leaf        *certgen.Pair
	verified    [][]*x509.Certificate
}

func newPinChain(t *testing.T) pinChain {
	t.Helper()
	root := testCA(t)
	inter, err := certgen.NewIntermediate(root, "pin intermediate", certgen.ECDSAP256)
	require.NoError(t, err)
	leaf, err := inter.Issue(certgen.Options{CommonName: "db", DNSNames: []string{"db.example"}})
	require.NoError(t, err)
	return pinChain{root: root, inter: inter, leaf: leaf,
		verified: verifyFor(t, []*x509.Certificate{leaf.Cert, inter.Cert}, root.Cert)}
}

// verifyFor verifies a presented chain (leaf first) against roots, as
// tlsPolicy.verifyChain does, and returns the verified chains.
func verifyFor(t *testing.T, presented []*x509.Certificate, roots ...*x509.Certificate) [][]*x509.Certificate {
	t.Helper()
	opts := x509.VerifyOptions{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool()}
	for _, r := range roots {
		opts.Roots.AddCert(r)
	}
	for _, c := range presented[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := presented[0].Verify(opts)
	require.NoError(t, err)
	return chains
}

func TestCheckPinsMatchesAnyCertificateOfTheVerifiedChain(t *testing.T) {
	c := newPinChain(t)
	other := certgen.SPKIPin(testCA(t).Cert)
	for name, pin := range map[string]string{
		"leaf":                         certgen.SPKIPin(c.leaf.Cert),
		"intermediate":                 certgen.SPKIPin(c.inter.Cert),
		"root the server did not send": certgen.SPKIPin(c.root.Cert),
	} {
		t.Run(name, func(t *testing.T) {
			assert.NoError(t, checkPins(c.verified, []string{pin}))
			assert.NoError(t, checkPins(c.verified, []string{other, pin}), "current and next pin")
		})
	}
	assert.NoError(t, checkPins(c.verified, nil), "no pins, no pinning")
}

func TestCheckPinsMismatch(t *testing.T) {
	c := newPinChain(t)
	pinned := []string{certgen.SPKIPin(testCA(t).Cert), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}
	err := checkPins(c.verified, pinned)
	require.ErrorIs(t, err, ErrUntrustedServer)
	require.ErrorIs(t, err, ErrNotEncrypted)
	var ce *CertificateError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "CN=db", ce.Subject)
	assert.Equal(t, []string{"db.example"}, ce.Names)
	for _, want := range []string{
		certgen.SPKIPin(c.leaf.Cert), certgen.SPKIPin(c.inter.Cert), certgen.SPKIPin(c.root.Cert),
		pinned[0], pinned[1], "add the new pin with PinSPKI before rotating keys",
	} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestCheckPinsIgnoresCertificatesOffThePath shows why pins are checked
// against the verified chain: a server holding a certificate from a trusted
// CA must not pass by also sending the pinned certificate, which is public.
func TestCheckPinsIgnoresCertificatesOffThePath(t *testing.T) {
	trusted, pinnedCA := testCA(t), testCA(t)
	impostor, err := trusted.Issue(certgen.Options{CommonName: "db", DNSNames: []string{"db.example"}})
	require.NoError(t, err)
	presented := []*x509.Certificate{impostor.Cert, pinnedCA.Cert}
	pins := []string{certgen.SPKIPin(pinnedCA.Cert)}
	require.Equal(t, pins[0], certgen.SPKIPin(presented[1]), "the pinned certificate is in what the server sent")

	err = checkPins(verifyFor(t, presented, trusted.Cert, pinnedCA.Cert), pins)
	require.ErrorIs(t, err, ErrUntrustedServer)
	assert.True(t, errors.As(err, new(*CertificateError)))
}
