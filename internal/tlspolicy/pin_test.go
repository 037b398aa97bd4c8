package tlspolicy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pinCertFile is a certificate fixture whose pin openssl computed when it
// was generated (pinCertFile + ".pin"; see testdata/keys/README).
const pinCertFile = "pin-vector.crt"

func TestSPKIPinFixedVector(t *testing.T) {
	t.Parallel()
	want := strings.TrimSpace(string(readFixture(t, keysDir(), pinCertFile+".pin")))
	require.Len(t, want, 44)
	got, err := SPKIPin(readFixture(t, keysDir(), pinCertFile))
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestSPKIPinMatchesOpenSSL(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "openssl", "openssl") // without it TestSPKIPinFixedVector checks a vector it computed
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
	t.Parallel()
	a, err := certgen.SelfSigned(certgen.Options{CommonName: "a"})
	require.NoError(t, err)
	b, err := certgen.SelfSigned(certgen.Options{CommonName: "b"})
	require.NoError(t, err)
	got, err := SPKIPin(append(append([]byte(nil), a.CertPEM...), b.CertPEM...))
	require.NoError(t, err)
	assert.Equal(t, certgen.SPKIPin(a.Cert), got)

	_, err = SPKIPin(a.KeyPEM)
	require.ErrorIs(t, err, shared.ErrInsecureConfig)
	assert.Contains(t, err.Error(), `no PEM "CERTIFICATE" block`)
}

func TestParsePins(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	good := certgen.SPKIPin(ca.Cert)
	require.NoError(t, ParsePins([]string{good}))
	require.NoError(t, ParsePins([]string{good, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}))
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
			err := ParsePins(c.pins)
			require.ErrorIs(t, err, shared.ErrInsecureConfig)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "SPKIPin")
		})
	}
}
