package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// guideServer makes the server certificate with the guide's own command
// (`openssl req -newkey rsa:4096 -nodes -keyout server.key -x509`,
// self-signed, CN only), valid for days days, and runs PostgreSQL 15 with it.
// It returns the server, the files the server reads, and a copy of the
// certificate as a client keeps it (its sslrootcert).
func guideServer(t *testing.T, days int) (pg *testutil.Postgres, srvCert, srvKey, clientPin string) {
	t.Helper()
	openssl := testutil.RequireTool(t, "openssl", "openssl")
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	out, err := exec.Command(openssl, "req", "-newkey", "rsa:4096", "-nodes", "-keyout", key, "-x509", "-days", strconv.Itoa(days),
		"-out", crt, "-subj", "/CN=localhost").CombinedOutput()
	require.NoError(t, err, "%s", out)
	pg = testutil.StartPostgres(t, testutil.PGOptions{ServerCertPEM: readFile(t, crt), ServerKeyPEM: readFile(t, key)})
	pg.CreateRole(t, "app", appPassword)
	pg.Exec(t, "CREATE ROLE admin SUPERUSER LOGIN PASSWORD '"+appPassword+"'")
	srvCert, srvKey = pg.ServerCertFiles()
	clientPin = writeFile(t, t.TempDir(), "root.crt", string(readFile(t, crt)))
	return pg, srvCert, srvKey, clientPin
}

// psqlVerifies connects with psql 15 (libpq, sslmode=verify-full) to
// localhost with rootCert as sslrootcert and reports whether SELECT 1 ran.
func psqlVerifies(t *testing.T, pg *testutil.Postgres, rootCert string) (bool, string) {
	t.Helper()
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	conn := "host=localhost hostaddr=127.0.0.1 port=" + strconv.Itoa(pg.Port) + " user=app dbname=postgres sslmode=verify-full sslrootcert=" + rootCert
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, "-w", "-X", "-A", "-t", "-c", "SELECT 1", conn)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C", "PGPASSWORD=" + appPassword, "PGCONNECT_TIMEOUT=10"}
	out, err := cmd.CombinedOutput()
	return err == nil && strings.TrimSpace(string(out)) == "1", string(out)
}

// adminAtLocalhost is the superuser's DSN with the host name the guide's
// certificate names.
func adminAtLocalhost(pg *testutil.Postgres) string {
	return "postgres://admin:" + appPassword + "@localhost:" + strconv.Itoa(pg.Port) + "/postgres"
}

func pemCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for rest := readFile(t, path); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		out = append(out, c)
	}
}

// TestCertsRenewGuideCertificateNeedsAChoice: renew does not pick a way to
// renew a self-signed certificate by itself; it names both and changes nothing.
func TestCertsRenewGuideCertificateNeedsAChoice(t *testing.T) {
	t.Parallel()
	_, srvCert, srvKey, _ := guideServer(t, 20)
	before := readFile(t, srvCert)
	for _, args := range [][]string{
		{"--cert", srvCert, "--key", srvKey},
		{"--cert", srvCert, "--key", srvKey, "--ca-dir", newCADir(t, "5")},
	} {
		res := runCLI(t, noEnv, append([]string{"certs", "renew"}, args...)...)
		assert.Equal(t, exitUsage, res.code, res.all())
		assert.Contains(t, res.stderr, "is self-signed")
		assert.Contains(t, res.stderr, "--self-signed reissue")
		assert.Contains(t, res.stderr, "--self-signed migrate")
		assert.NotContains(t, res.stderr, "with the CA that issued it")
		assert.Equal(t, before, readFile(t, srvCert), "nothing written")
	}
	res := runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "migrate", "--ca-dir", t.TempDir(), "--reload", "host=x")
	assert.Equal(t, exitUsage, res.code, res.all())
	assert.Contains(t, res.stderr, "--reload and --new-key belong to --self-signed switch")
	res = runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "bogus")
	assert.Equal(t, exitUsage, res.code, res.all())
	assert.Contains(t, res.stderr, "--self-signed is reissue, migrate or switch")
	res = runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "switch", "--ca-dir", t.TempDir())
	assert.Equal(t, exitUsage, res.code, res.all())
	assert.Contains(t, res.stderr, "--self-signed migrate", "switching before the clients pin the bundle is refused")
	assert.Equal(t, before, readFile(t, srvCert), "nothing written")
}

// TestCertsRenewGuideCertificateReissue renews the guide's self-signed
// certificate in place (same key, subject, names) and reloads the server:
// psql pinning the new file verifies the server, and what the output warns
// about holds (the old file fails, and so does a file holding both).
func TestCertsRenewGuideCertificateReissue(t *testing.T) {
	t.Parallel()
	isolate(t)
	pg, srvCert, srvKey, clientPin := guideServer(t, 20)
	old := readCert(t, srvCert)
	ok, out := psqlVerifies(t, pg, clientPin)
	require.True(t, ok, "the guide's setup works before the renewal: %s", out)

	res := runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "reissue", "--reload", adminAtLocalhost(pg))
	require.Equal(t, exitOK, res.code, res.all())
	renewed := readCert(t, srvCert)
	assert.NotEqual(t, old.SerialNumber, renewed.SerialNumber)
	assert.Equal(t, old.RawSubject, renewed.RawSubject)
	assert.Equal(t, old.RawSubject, renewed.RawIssuer, "still self-signed")
	require.NoError(t, renewed.CheckSignatureFrom(renewed))
	assert.Equal(t, certgen.SPKIPin(old), certgen.SPKIPin(renewed), "same key")
	assert.Equal(t, old.IsCA, renewed.IsCA)
	assert.Equal(t, []string{"localhost"}, renewed.DNSNames, "the Common Name is also a DNS name now")
	assert.InDelta(t, 365*24, time.Until(renewed.NotAfter).Hours(), 1)
	// The steps for the clients, exactly.
	for _, want := range []string{
		"clients pin " + srvCert,
		"--reload does it now",
		"copy " + srvCert + " to every client, over the file its sslrootcert names",
		"PGSSLROOTCERT",
		`pgsecure check --ca /path/to/the/copy "postgres://USER@localhost:5432/DBNAME"`,
		"--self-signed migrate",
		"new connections are served serial " + hexSerial(renewed.SerialNumber),
	} {
		assert.Contains(t, res.stdout, want)
	}
	assert.NotContains(t, res.all(), appPassword)

	newPin := writeFile(t, t.TempDir(), "root.crt", string(readFile(t, srvCert)))
	ok, out = psqlVerifies(t, pg, newPin)
	assert.True(t, ok, "psql with the renewed file as sslrootcert: %s", out)
	ok, _ = psqlVerifies(t, pg, clientPin)
	assert.False(t, ok, "as the output warns, the old file fails after the reload")
	both := writeFile(t, t.TempDir(), "root.crt", string(readFile(t, clientPin))+string(readFile(t, srvCert)))
	ok, _ = psqlVerifies(t, pg, both)
	assert.False(t, ok, "as the output warns, libpq takes the first certificate of a subject: old+new fails")

	// And check verifies it, as step 3 says.
	res = runCLI(t, noEnv, "check", "--audit=off", "--ca", newPin, "postgres://app:"+appPassword+"@localhost:"+strconv.Itoa(pg.Port)+"/postgres")
	assert.Equal(t, exitOK, res.code, res.all())

	// Idempotent: the nightly run finds nothing due and the server presenting it.
	res = runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "reissue", "--reload", adminAtLocalhost(pg))
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "not within 30 days: nothing to do")
	assert.Contains(t, res.stdout, "presents serial "+hexSerial(renewed.SerialNumber)+": nothing to do")

	// Renewed without --reload, reloaded by a later run: that one needs the
	// certificate the server still presents, and says so.
	res = runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "reissue", "--force")
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "again with --reload DSN --ca OLD")
	res = runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "reissue", "--reload", adminAtLocalhost(pg))
	assert.Equal(t, exitInsecure, res.code, res.all())
	assert.Contains(t, res.stderr, "pass --ca FILE with a copy of that one")
	res = runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "reissue", "--reload", adminAtLocalhost(pg), "--ca", newPin)
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "new connections are served serial "+hexSerial(readCert(t, srvCert).SerialNumber))
}

// TestCertsRenewGuideCertificateMigrate moves the guide's self-signed server
// to a CA: a CA and a bundle (old certificate + new CA) for the clients, then
// the switch to a CA-issued certificate with the same names. psql pinning the
// bundle verifies the server before and after the switch; after it, the CA
// alone suffices and the old pin no longer does.
func TestCertsRenewGuideCertificateMigrate(t *testing.T) {
	t.Parallel()
	isolate(t)
	pg, srvCert, srvKey, clientPin := guideServer(t, 365)
	old := readCert(t, srvCert)
	caDir := filepath.Join(t.TempDir(), "pki")

	// Step 1: CA and bundle; the server is not touched.
	res := runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "migrate", "--ca-dir", caDir)
	require.Equal(t, exitOK, res.code, res.all())
	bundle, caFile := filepath.Join(caDir, "ca-bundle.crt"), filepath.Join(caDir, "ca.crt")
	assert.Equal(t, old.Raw, readCert(t, srvCert).Raw, "the server certificate is unchanged until the switch")
	certs := pemCerts(t, bundle)
	require.Len(t, certs, 2)
	assert.Equal(t, readCert(t, caFile).Raw, certs[0].Raw)
	assert.Equal(t, old.Raw, certs[1].Raw)
	for _, want := range []string{"step 1", "step 2", "step 3", "step 4", "wrote " + bundle,
		"--self-signed switch", "pgsecure check --ca " + bundle, "pgsecure check --ca " + caFile} {
		assert.Contains(t, res.stdout, want)
	}
	// Running it again (a second server, or by mistake) keeps one copy of each.
	res = runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "migrate", "--ca-dir", caDir)
	require.Equal(t, exitOK, res.code, res.all())
	assert.Len(t, pemCerts(t, bundle), 2)

	clientBundle := writeFile(t, t.TempDir(), "root.crt", string(readFile(t, bundle)))
	ok, out := psqlVerifies(t, pg, clientBundle)
	require.True(t, ok, "a client pinning the bundle verifies the self-signed server: %s", out)
	appDSN := "postgres://app:" + appPassword + "@localhost:" + strconv.Itoa(pg.Port) + "/postgres"
	res = runCLI(t, noEnv, "check", "--audit=off", "--ca", clientBundle, appDSN)
	assert.Equal(t, exitOK, res.code, "step 3's check, before the switch: %s", res.all())

	// Step 3: the switch.
	res = runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--self-signed", "switch", "--ca-dir", caDir,
		"--reload", adminAtLocalhost(pg))
	require.Equal(t, exitOK, res.code, res.all())
	switched := readCert(t, srvCert)
	require.NoError(t, switched.CheckSignatureFrom(readCert(t, caFile)), "issued by the new CA")
	assert.Equal(t, old.RawSubject, switched.RawSubject)
	assert.Equal(t, []string{"localhost"}, switched.DNSNames)
	assert.False(t, switched.IsCA)
	assert.Contains(t, res.stdout, "step 4")
	assert.Contains(t, res.stdout, "new connections are served serial "+hexSerial(switched.SerialNumber))

	ok, out = psqlVerifies(t, pg, clientBundle)
	assert.True(t, ok, "a client pinning the bundle verifies the CA-issued server: %s", out)
	res = runCLI(t, noEnv, "check", "--audit=off", "--ca", clientBundle, appDSN)
	assert.Equal(t, exitOK, res.code, "the bundle after the switch: %s", res.all())
	res = runCLI(t, noEnv, "check", "--audit=off", "--ca", caFile, appDSN)
	assert.Equal(t, exitOK, res.code, "step 5's check: %s", res.all())
	ok, out = psqlVerifies(t, pg, caFile)
	assert.True(t, ok, "after the switch the CA alone suffices: %s", out)
	ok, _ = psqlVerifies(t, pg, clientPin)
	assert.False(t, ok, "the old self-signed pin no longer verifies the server: the switch happened")

	// From now on the certificate renews like any other from the CA.
	res = runCLI(t, noEnv, "certs", "renew", "--cert", srvCert, "--key", srvKey, "--ca-dir", caDir, "--force")
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "renewed "+srvCert)
}
