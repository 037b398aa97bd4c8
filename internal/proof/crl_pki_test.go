package proof

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/require"
)

// opensslCA is a certgen CA driven by `openssl ca` for revocations and CRLs:
// its own directory with the database, serial, crlnumber and new_certs_dir
// that `openssl ca` needs.
type opensslCA struct {
	*certgen.CA
	openssl, dir, conf string
}

func newOpensslCA(t *testing.T, openssl string, ca *certgen.CA, name string) *opensslCA {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "newcerts"), 0o700))
	testutil.WritePEM(t, dir, "ca.crt", ca.CertPEM)
	testutil.WritePEM(t, dir, "ca.key", ca.KeyPEM)
	testutil.WritePEM(t, dir, "index.txt", nil)
	testutil.WritePEM(t, dir, "serial", []byte("1000\n"))
	testutil.WritePEM(t, dir, "crlnumber", []byte("1000\n"))
	conf := testutil.WritePEM(t, dir, "ca.cnf", []byte(`[ ca ]
default_ca = CA_default
[ CA_default ]
dir = `+dir+`
database = $dir/index.txt
serial = $dir/serial
crlnumber = $dir/crlnumber
new_certs_dir = $dir/newcerts
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
default_crl_days = 30
policy = policy_any
[ policy_any ]
commonName = supplied
`))
	return &opensslCA{CA: ca, openssl: openssl, dir: dir, conf: conf}
}

func (c *opensslCA) run(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.openssl, append([]string{"ca", "-batch", "-config", c.conf}, args...)...).CombinedOutput()
	require.NoError(t, err, "openssl ca %v: %s", args, out)
}

// revoke adds cert to the CA's database of revoked certificates.
func (c *opensslCA) revoke(t *testing.T, certPEM []byte) {
	t.Helper()
	f := testutil.WritePEM(t, t.TempDir(), "revoke.crt", certPEM)
	c.run(t, "-revoke", f)
}

// crl makes a CRL of the database as it is now. expired gives it a
// lastUpdate and nextUpdate in the past; otherwise it is valid for validFor
// (default_crl_days when 0).
func (c *opensslCA) crl(t *testing.T, expired bool, validFor time.Duration) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ca.crl")
	args := []string{"-gencrl", "-out", out}
	switch {
	case expired:
		now := time.Now().UTC()
		args = append(args, "-crl_lastupdate", now.Add(-48*time.Hour).Format("20060102150405Z"),
			"-crl_nextupdate", now.Add(-24*time.Hour).Format("20060102150405Z"))
	case validFor > 0:
		args = append(args, "-crlsec", strconv.Itoa(int(validFor.Seconds())))
	}
	c.run(t, args...)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

// rehashDir writes each CRL to its own file in a new directory and runs
// `openssl rehash` on it, giving the <hash>.r<n> names sslcrldir wants.
func rehashDir(t *testing.T, openssl string, crls ...[]byte) string {
	t.Helper()
	dir := t.TempDir()
	for i, c := range crls {
		testutil.WritePEM(t, dir, "crl"+string(rune('a'+i))+".pem", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, openssl, "rehash", dir).CombinedOutput()
	require.NoError(t, err, "openssl rehash: %s", out)
	return dir
}
