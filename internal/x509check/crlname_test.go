package x509check

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNameHashMatchesOpenSSL: NameHash gives the hash `openssl x509
// -subject_hash` prints (the name of the file `openssl rehash` makes), for
// names whose canonical form differs from their encoding: case, runs of
// spaces, leading and trailing spaces, multi-valued RDNs, UTF-8 and
// PrintableString values.
func TestNameHashMatchesOpenSSL(t *testing.T) {
	openssl := testutil.RequireTool(t, "openssl", "openssl")
	dir := t.TempDir()
	for i, subject := range []string{
		"/CN=pgsecure CRL test root",
		"/CN=  Mixed   CASE\tName  /O=Acme Inc./C=DE",
		"/C=US/O=Example/OU=Ops+CN=Two Valued",
		"/CN=Ünïcödé Straße/O=ÄÖÜ",
		"/DC=com/DC=example/CN=db",
	} {
		t.Run(subject, func(t *testing.T) {
			certFile := filepath.Join(dir, fmt.Sprintf("c%d.pem", i))
			runOpenSSLTool(t, openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
				"-keyout", filepath.Join(dir, fmt.Sprintf("k%d.pem", i)), "-out", certFile, "-days", "1", "-utf8", "-multivalue-rdn", "-subj", subject)
			want := strings.TrimSpace(runOpenSSLTool(t, openssl, "x509", "-noout", "-subject_hash", "-in", certFile))
			b, err := os.ReadFile(certFile)
			require.NoError(t, err)
			block, _ := pem.Decode(b)
			cert, err := x509.ParseCertificate(block.Bytes)
			require.NoError(t, err)
			h, err := NameHash(cert.RawSubject)
			require.NoError(t, err)
			assert.Equal(t, want, fmt.Sprintf("%08x", h))
		})
	}
}

// TestNamesEqualCanonical: OpenSSL matches a CRL to a certificate's issuer
// by canonical name, so case and white space do not matter, but the value
// does.
func TestNamesEqualCanonical(t *testing.T) {
	a := crlTestName(t, "CN", "Acme   Root CA")
	assert.True(t, NamesEqual(a, crlTestName(t, "CN", " acme root ca ")))
	assert.False(t, NamesEqual(a, crlTestName(t, "CN", "Acme Root CA 2")))
}

func crlTestName(t *testing.T, attr, value string) []byte {
	t.Helper()
	// SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, UTF8String value } } }
	require.Equal(t, "CN", attr)
	v := append([]byte{0x0c, byte(len(value))}, value...)
	atv := append([]byte{0x30, byte(5 + len(v)), 0x06, 0x03, 0x55, 0x04, 0x03}, v...)
	set := append([]byte{0x31, byte(len(atv))}, atv...)
	return append([]byte{0x30, byte(len(set))}, set...)
}

func runOpenSSLTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
	return string(out)
}
