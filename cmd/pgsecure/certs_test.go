package main

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCertsThenCheck follows the steps a new user takes: a CA, a server
// certificate for this machine, a real PostgreSQL using the files, and
// `pgsecure check` against it.
func TestCertsThenCheck(t *testing.T) {
	t.Parallel()
	isolate(t)
	dir := t.TempDir()
	res := runCLI(t, noEnv, "certs", "ca", "--out", dir, "--cn", "My Test CA")
	require.Equal(t, exitOK, res.code, res.all())
	res = runCLI(t, noEnv, "certs", "server", "--ca-dir", dir, "--out", dir, "--dns", "localhost", "--ip", "127.0.0.1")
	require.Equal(t, exitOK, res.code, res.all())
	for _, want := range []string{
		"ssl = on", "ssl_cert_file = '" + filepath.Join(dir, "server.crt") + "'", "ssl_key_file = '" + filepath.Join(dir, "server.key") + "'",
		"ssl_min_protocol_version = 'TLSv1.2'", "ssl_ca_file = '" + filepath.Join(dir, "ca.crt") + "'",
		"hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0      reject", "hostssl   all all 0.0.0.0/0 scram-sha-256",
		"clientcert=verify-full", "postgres://USER@localhost:5432/DBNAME?sslrootcert=" + filepath.Join(dir, "ca.crt"),
		"ssl_ciphers = '" + goodCiphers + "'", "password_encryption = 'scram-sha-256'", "log_connections = on",
		"pgsecure certs renew --ca-dir " + dir + " --cert " + filepath.Join(dir, "server.crt") + " --key " + filepath.Join(dir, "server.key"),
	} {
		assert.Contains(t, res.stdout, want)
	}
	assertMode(t, filepath.Join(dir, "server.key"), 0o600)
	assertMode(t, filepath.Join(dir, "private", "ca.key"), 0o600)
	assertMode(t, filepath.Join(dir, "private"), 0o700)
	assert.NoFileExists(t, filepath.Join(dir, "ca.key"), "the CA key is not among the files shipped to the server")
	assertMode(t, filepath.Join(dir, "server.crt"), 0o644)
	leaf := readCert(t, filepath.Join(dir, "server.crt"))
	assert.Equal(t, []string{"localhost"}, leaf.DNSNames)
	assert.Equal(t, "127.0.0.1", leaf.IPAddresses[0].String())
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, leaf.ExtKeyUsage)
	_, isEC := leaf.PublicKey.(*ecdsa.PublicKey)
	assert.True(t, isEC, "ECDSA P-256 by default")

	certPEM, keyPEM := readFile(t, filepath.Join(dir, "server.crt")), readFile(t, filepath.Join(dir, "server.key"))
	pg := testutil.StartPostgres(t, testutil.PGOptions{ServerCertPEM: certPEM, ServerKeyPEM: keyPEM})
	pg.CreateRole(t, "app", appPassword)
	res = runCLI(t, noEnv, "check", "--audit=off", "--ca", filepath.Join(dir, "ca.crt"), pg.URL("app", appPassword, "postgres"))
	assert.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "issuer        CN=My Test CA")

	// A second run refuses to overwrite, names the file and --force, and
	// leaves the files as they were.
	res = runCLI(t, noEnv, "certs", "server", "--ca-dir", dir, "--out", dir, "--dns", "localhost")
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, filepath.Join(dir, "server.crt"))
	assert.Contains(t, res.stderr, "--force")
	assert.Equal(t, certPEM, readFile(t, filepath.Join(dir, "server.crt")))
	assert.Equal(t, keyPEM, readFile(t, filepath.Join(dir, "server.key")))
	caPEM := readFile(t, filepath.Join(dir, "private", "ca.key"))
	res = runCLI(t, noEnv, "certs", "ca", "--out", dir)
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, filepath.Join(dir, "ca.crt"))
	assert.Equal(t, caPEM, readFile(t, filepath.Join(dir, "private", "ca.key")))

	res = runCLI(t, noEnv, "certs", "server", "--ca-dir", dir, "--out", dir, "--dns", "db.example.com", "--days", "30", "--force")
	require.Equal(t, exitOK, res.code, res.all())
	renewed := readCert(t, filepath.Join(dir, "server.crt"))
	assert.Equal(t, []string{"db.example.com"}, renewed.DNSNames)
	assert.InDelta(t, 30*24, renewed.NotAfter.Sub(renewed.NotBefore).Hours()-1, 0.01)
	assertMode(t, filepath.Join(dir, "server.key"), 0o600)
}

func TestCertsClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.Equal(t, exitOK, runCLI(t, noEnv, "certs", "ca", "--out", dir).code)
	res := runCLI(t, noEnv, "certs", "client", "--ca-dir", dir, "--out", dir, "--user", "app_reader")
	require.Equal(t, exitOK, res.code, res.all())
	crt := readCert(t, filepath.Join(dir, "client-app_reader.crt"))
	assert.Equal(t, "app_reader", crt.Subject.CommonName)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, crt.ExtKeyUsage)
	assert.Empty(t, crt.DNSNames)
	assertMode(t, filepath.Join(dir, "client-app_reader.key"), 0o600)
	ca := readCert(t, filepath.Join(dir, "ca.crt"))
	require.NoError(t, crt.CheckSignatureFrom(ca))
	assert.Contains(t, res.stdout, "--cert "+filepath.Join(dir, "client-app_reader.crt"))
}

// TestCertsPrintAbsolutePaths: relative --out and --ca-dir give absolute
// paths in every message, so the printed configuration works from anywhere.
func TestCertsPrintAbsolutePaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	res := runCLI(t, noEnv, "certs", "ca", "--out", "pki")
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "wrote "+filepath.Join(dir, "pki", "ca.crt"))
	assert.Contains(t, res.stdout, "wrote "+filepath.Join(dir, "pki", "private", "ca.key"))
	assert.Contains(t, res.stdout, "never copy it with the server files")
	for _, args := range [][]string{
		{"certs", "server", "--ca-dir", "pki", "--out", "srv", "--dns", "localhost"},
		{"certs", "client", "--ca-dir", "pki", "--out", "cli", "--user", "app"},
	} {
		res = runCLI(t, noEnv, args...)
		require.Equal(t, exitOK, res.code, res.all())
		for _, line := range strings.Split(res.stdout, "\n") {
			if strings.HasPrefix(line, "wrote ") {
				assert.True(t, filepath.IsAbs(strings.Fields(line)[1]), line)
			}
		}
		assert.Contains(t, res.stdout, filepath.Join(dir, "pki", "ca.crt"))
		assert.NotContains(t, res.stdout, " pki/")
	}
}

func TestCertsRSA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := runCLI(t, noEnv, "certs", "ca", "--out", dir, "--rsa")
	require.Equal(t, exitOK, res.code, res.all())
	ca := readCert(t, filepath.Join(dir, "ca.crt"))
	pub, ok := ca.PublicKey.(*rsa.PublicKey)
	require.True(t, ok, "--rsa gives an RSA key")
	assert.GreaterOrEqual(t, pub.N.BitLen(), 3072)
}

func TestCertsUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"no out":         {"certs", "ca"},
		"no ca-dir":      {"certs", "server", "--out", dir, "--dns", "a"},
		"no names":       {"certs", "server", "--ca-dir", dir, "--out", dir},
		"bad ip":         {"certs", "server", "--ca-dir", dir, "--out", dir, "--ip", "300.1.1.1"},
		"no user":        {"certs", "client", "--ca-dir", dir, "--out", dir},
		"bad days":       {"certs", "server", "--ca-dir", dir, "--out", dir, "--dns", "a", "--days", "0"},
		"flag of server": {"certs", "ca", "--out", dir, "--dns", "a"},
		"extra argument": {"certs", "ca", "--out", dir, "oops"},
	} {
		t.Run(name, func(t *testing.T) {
			res := runCLI(t, noEnv, args...)
			assert.Equal(t, exitUsage, res.code, res.all())
			assert.NotEmpty(t, res.stderr)
		})
	}
	res := runCLI(t, noEnv, "certs", "server", "--ca-dir", dir, "--out", dir, "--dns", "a")
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, "pgsecure certs ca --out "+dir)
	assert.NoFileExists(t, filepath.Join(dir, "server.key"), "nothing written without a CA")
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, want, st.Mode().Perm(), path)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(readFile(t, path))
	require.NotNil(t, block)
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return c
}
