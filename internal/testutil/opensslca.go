package testutil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
)

// OpenSSLCA is a certgen CA driven by `openssl ca` for revocations and
// certificate revocation lists: its own directory with the database,
// serial, crlnumber and new_certs_dir that `openssl ca` needs.
type OpenSSLCA struct {
	*certgen.CA
	openssl, dir, conf string
}

// NewOpenSSLCA sets up `openssl ca` for ca (openssl is the binary's path).
func NewOpenSSLCA(t testing.TB, openssl string, ca *certgen.CA) *OpenSSLCA {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "newcerts"), 0o700); err != nil {
		t.Fatalf("pgsecure/testutil: %v", err)
	}
	WritePEM(t, dir, "ca.crt", ca.CertPEM)
	WritePEM(t, dir, "ca.key", ca.KeyPEM)
	WritePEM(t, dir, "index.txt", nil)
	WritePEM(t, dir, "serial", []byte("1000\n"))
	WritePEM(t, dir, "crlnumber", []byte("1000\n"))
	conf := WritePEM(t, dir, "ca.cnf", []byte(`[ ca ]
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
	return &OpenSSLCA{CA: ca, openssl: openssl, dir: dir, conf: conf}
}

func (c *OpenSSLCA) run(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.openssl, append([]string{"ca", "-batch", "-config", c.conf}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl ca %v: %v: %s", args, err, out)
	}
}

// Revoke adds certPEM to the CA's database of revoked certificates
// (openssl ca -revoke), with a CRL reason code ("keyCompromise",
// "removeFromCRL", ...) when reason is not "".
func (c *OpenSSLCA) Revoke(t testing.TB, certPEM []byte, reason string) {
	t.Helper()
	args := []string{"-revoke", WritePEM(t, t.TempDir(), "revoke.crt", certPEM)}
	if reason != "" {
		args = append(args, "-crl_reason", reason)
	}
	c.run(t, args...)
}

// CRL makes a CRL of the database as it is now (openssl ca -gencrl) with
// the given lastUpdate and nextUpdate; zero times mean now and now plus
// default_crl_days (30).
func (c *OpenSSLCA) CRL(t testing.TB, lastUpdate, nextUpdate time.Time) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ca.crl")
	args := []string{"-gencrl", "-out", out}
	if !lastUpdate.IsZero() {
		args = append(args, "-crl_lastupdate", lastUpdate.UTC().Format("20060102150405Z"))
	}
	if !nextUpdate.IsZero() {
		args = append(args, "-crl_nextupdate", nextUpdate.UTC().Format("20060102150405Z"))
	}
	c.run(t, args...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("pgsecure/testutil: %v", err)
	}
	return b
}

// RehashDir writes each CRL to its own file in a new directory and runs
// `openssl rehash` on it, giving the <hash>.r<n> names sslcrldir wants.
func RehashDir(t testing.TB, openssl string, crls ...[]byte) string {
	t.Helper()
	dir := t.TempDir()
	for i, c := range crls {
		WritePEM(t, dir, "crl"+strconv.Itoa(i)+".pem", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, openssl, "rehash", dir).CombinedOutput(); err != nil {
		t.Fatalf("openssl rehash: %v: %s", err, out)
	}
	return dir
}
