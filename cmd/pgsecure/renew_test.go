package main

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newCADir runs `certs ca` and `certs server` for this machine, the server
// certificate valid for days days, and returns the directory.
func newCADir(t *testing.T, days string) string {
	t.Helper()
	dir := t.TempDir()
	require.Equal(t, exitOK, runCLI(t, noEnv, "certs", "ca", "--out", dir).code)
	res := runCLI(t, noEnv, "certs", "server", "--ca-dir", dir, "--out", dir, "--dns", "localhost", "--ip", "127.0.0.1", "--days", days)
	require.Equal(t, exitOK, res.code, res.all())
	return dir
}

func owner(t *testing.T, path string) [2]uint32 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	sys := st.Sys().(*syscall.Stat_t)
	return [2]uint32{sys.Uid, sys.Gid}
}

// TestCertsRenewAcrossReload renews the certificate of a running server in
// place, reloads it, and shows that a pool that kept running serves new
// connections with the new certificate while its open connection goes on.
func TestCertsRenewAcrossReload(t *testing.T) {
	t.Parallel()
	isolate(t)
	dir := newCADir(t, "10")
	caFile := filepath.Join(dir, "ca.crt")
	pg := testutil.StartPostgres(t, testutil.PGOptions{
		ServerCertPEM: readFile(t, filepath.Join(dir, "server.crt")), ServerKeyPEM: readFile(t, filepath.Join(dir, "server.key"))})
	pg.CreateRole(t, "app", appPassword)
	pg.Exec(t, "CREATE ROLE admin SUPERUSER LOGIN PASSWORD '"+appPassword+"'")
	srvCert, srvKey := pg.ServerCertFiles()
	old := readCert(t, srvCert)
	keyBefore, certOwner, keyOwner := readFile(t, srvKey), owner(t, srvCert), owner(t, srvKey)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := pgsecure.NewBuilder(pg.URL("app", appPassword, "postgres")).RootCAFile(caFile).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	held, err := pool.Acquire(ctx)
	require.NoError(t, err)
	rep, err := pgsecure.ConnReport(held.Conn())
	require.NoError(t, err)
	require.Equal(t, old.SerialNumber.String(), rep.Leaf().SerialNumber)

	reload := pg.URL("admin", appPassword, "postgres")
	res := runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", srvCert, "--key", srvKey, "--reload", reload)
	require.Equal(t, exitOK, res.code, res.all())
	renewed := readCert(t, srvCert)
	assert.NotEqual(t, old.SerialNumber, renewed.SerialNumber)
	assert.Equal(t, old.RawSubject, renewed.RawSubject)
	assert.Equal(t, old.DNSNames, renewed.DNSNames)
	assert.Equal(t, old.IPAddresses, renewed.IPAddresses)
	assert.Equal(t, old.ExtKeyUsage, renewed.ExtKeyUsage)
	assert.Equal(t, certgen.SPKIPin(old), certgen.SPKIPin(renewed), "the key is kept by default")
	assert.InDelta(t, 365*24, time.Until(renewed.NotAfter).Hours(), 1)
	assert.Equal(t, keyBefore, readFile(t, srvKey))
	assert.Equal(t, certOwner, owner(t, srvCert), "the server's OS user still owns its files")
	assert.Equal(t, keyOwner, owner(t, srvKey))
	assertMode(t, srvKey, 0o600)
	assert.Contains(t, res.stdout, "renewed "+srvCert+": serial "+hexSerial(renewed.SerialNumber))
	assert.Contains(t, res.stdout, "new connections are served serial "+hexSerial(renewed.SerialNumber))
	assert.NotContains(t, res.all(), appPassword)

	// The open connection goes on; new ones see the new certificate.
	var one int
	require.NoError(t, held.QueryRow(ctx, "SELECT 1").Scan(&one))
	held.Release()
	pool.Reset()
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	rep, err = pgsecure.ConnReport(conn.Conn())
	require.NoError(t, err)
	assert.Equal(t, renewed.SerialNumber.String(), rep.Leaf().SerialNumber)
	conn.Release()

	// Idempotent: the next nightly run changes nothing and reloads nothing.
	certBytes := readFile(t, srvCert)
	res = runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", srvCert, "--key", srvKey, "--reload", reload)
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "not within 30 days: nothing to do")
	assert.Contains(t, res.stdout, "presents serial "+hexSerial(renewed.SerialNumber)+": nothing to do")
	assert.Equal(t, certBytes, readFile(t, srvCert))
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestCertsRenewNewKey(t *testing.T) {
	t.Parallel()
	dir := newCADir(t, "5")
	crt, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	old := readCert(t, crt)
	oldKey := readFile(t, key)

	res := runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", crt, "--key", key, "--new-key")
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "with a new key in "+key)
	assert.NotEqual(t, oldKey, readFile(t, key))
	_, err := tls.LoadX509KeyPair(crt, key)
	require.NoError(t, err, "the pair on disk matches")
	renewed := readCert(t, crt)
	assert.Equal(t, old.DNSNames, renewed.DNSNames)
	assert.NotEqual(t, certgen.SPKIPin(old), certgen.SPKIPin(renewed))
	assertMode(t, key, 0o600)
	assertMode(t, crt, 0o644)
	assert.Equal(t, []string{"ca.crt", "private", "server.crt", "server.key"}, dirNames(t, dir), "no temporary file left")

	// A run that stopped between its two renames left the new key in place
	// and the certificate staged: the next run finishes the swap first.
	ca, err := loadCA(dir)
	require.NoError(t, err)
	pair, err := ca.Issue(certgen.Options{CommonName: "localhost", DNSNames: []string{"localhost"}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(key, pair.KeyPEM, 0o600))
	require.NoError(t, os.WriteFile(stagedCertPath(crt), pair.CertPEM, 0o644))
	res = runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", crt, "--key", key)
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "completed an interrupted renewal")
	assert.Equal(t, pair.CertPEM, readFile(t, crt))
	assert.Equal(t, []string{"ca.crt", "private", "server.crt", "server.key"}, dirNames(t, dir))

	// A staged certificate whose key never made it is stale: removed, and
	// the pair in place is left alone.
	other, err := ca.Issue(certgen.Options{CommonName: "localhost", DNSNames: []string{"localhost"}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(stagedCertPath(crt), other.CertPEM, 0o644))
	res = runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", crt, "--key", key)
	require.Equal(t, exitOK, res.code, res.all())
	assert.Equal(t, pair.CertPEM, readFile(t, crt))
	assert.Equal(t, []string{"ca.crt", "private", "server.crt", "server.key"}, dirNames(t, dir))
}

func TestCertsRenewRefuses(t *testing.T) {
	t.Parallel()
	dir := newCADir(t, "5")
	crt, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	otherDir := newCADir(t, "5")
	require.Equal(t, exitOK, runCLI(t, noEnv, "certs", "client", "--ca-dir", dir, "--out", dir, "--user", "app").code)
	before := readFile(t, crt)

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no flags":      {nil, "--cert and --key are required, and --ca-dir except with --self-signed reissue"},
		"other CA":      {[]string{"--ca-dir", otherDir, "--cert", crt, "--key", key}, "was not issued by the CA in " + otherDir},
		"key mismatch":  {[]string{"--ca-dir", dir, "--cert", crt, "--key", filepath.Join(otherDir, "server.key")}, "does not belong to the certificate"},
		"client reload": {[]string{"--ca-dir", dir, "--cert", filepath.Join(dir, "client-app.crt"), "--key", filepath.Join(dir, "client-app.key"), "--reload", "host=x"}, "--reload is for server certificates"},
		"bad days":      {[]string{"--ca-dir", dir, "--cert", crt, "--key", key, "--days", "0"}, "--days"},
	} {
		t.Run(name, func(t *testing.T) {
			res := runCLI(t, noEnv, append([]string{"certs", "renew"}, tc.args...)...)
			assert.Equal(t, exitUsage, res.code, res.all())
			assert.Contains(t, res.stderr, tc.want)
			assert.Equal(t, before, readFile(t, crt), "nothing written")
		})
	}
}

// TestCertsRenewReloadLater: a renewal whose reload did not happen (no
// --reload, or it failed) is completed by the next run with --reload, and a
// --reload DSN naming a server that does not use the files fails loudly.
func TestCertsRenewReloadLater(t *testing.T) {
	t.Parallel()
	isolate(t)
	dir := newCADir(t, "10")
	pki := testutil.NewPKI(t)
	pg := testutil.StartPostgres(t, testutil.PGOptions{
		ServerCertPEM: readFile(t, filepath.Join(dir, "server.crt")), ServerKeyPEM: readFile(t, filepath.Join(dir, "server.key"))})
	pg.Exec(t, "CREATE ROLE admin SUPERUSER LOGIN PASSWORD '"+appPassword+"'")
	other := pki.StartPostgres(t, testutil.PGOptions{})
	other.Exec(t, "CREATE ROLE admin SUPERUSER LOGIN PASSWORD '"+appPassword+"'")
	srvCert, srvKey := pg.ServerCertFiles()

	res := runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", srvCert, "--key", srvKey)
	require.Equal(t, exitOK, res.code, res.all())
	renewed := readCert(t, srvCert)

	// The wrong server: it reloads fine but never presents the new certificate.
	res = runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", srvCert, "--key", srvKey, "--ca", pki.CAFile,
		"--timeout", "2s", "--reload", other.URL("admin", appPassword, "postgres"))
	assert.Equal(t, exitInsecure, res.code, res.all())
	assert.Contains(t, res.stderr, "still presents serial")
	assert.Contains(t, res.stderr, "not the renewed serial "+hexSerial(renewed.SerialNumber))
	assert.NotContains(t, res.all(), appPassword)

	// The right server: not due any more, but not yet serving it: reloaded.
	res = runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", srvCert, "--key", srvKey,
		"--reload", pg.URL("admin", appPassword, "postgres"))
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "nothing to do")
	assert.Contains(t, res.stdout, "new connections are served serial "+hexSerial(renewed.SerialNumber))

	// A role that may not reload: exit 3; the renewed files wait for a run that can.
	pg.Exec(t, "SET password_encryption = 'scram-sha-256'", "CREATE ROLE app LOGIN PASSWORD '"+appPassword+"'")
	res = runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", srvCert, "--key", srvKey, "--force",
		"--reload", pg.URL("app", appPassword, "postgres"))
	assert.Equal(t, exitNoLogin, res.code, res.all())
	assert.Contains(t, res.stderr, "pg_reload_conf")
}

// TestCertsRenewClient renews a client certificate: same role, same usage.
func TestCertsRenewClient(t *testing.T) {
	t.Parallel()
	dir := newCADir(t, "5")
	require.Equal(t, exitOK, runCLI(t, noEnv, "certs", "client", "--ca-dir", dir, "--out", dir, "--user", "app", "--days", "20").code)
	crt, key := filepath.Join(dir, "client-app.crt"), filepath.Join(dir, "client-app.key")
	old := readCert(t, crt)

	res := runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", crt, "--key", key, "--days", "90")
	require.Equal(t, exitOK, res.code, res.all())
	renewed := readCert(t, crt)
	assert.Equal(t, "app", renewed.Subject.CommonName)
	assert.Equal(t, old.ExtKeyUsage, renewed.ExtKeyUsage)
	assert.InDelta(t, 90*24, time.Until(renewed.NotAfter).Hours(), 1)
	_, err := tls.LoadX509KeyPair(crt, key)
	require.NoError(t, err)
}
