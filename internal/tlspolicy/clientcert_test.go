package tlspolicy

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/keyfile"
	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/verify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// certFor issues a client certificate for an existing public key.
func certFor(t *testing.T, ca *certgen.CA, pub crypto.PublicKey, cn string) []byte {
	return testutil.ClientCertForKey(t, ca, pub, cn)
}

func testCA(t *testing.T) *certgen.CA {
	t.Helper()
	ca, err := certgen.NewCA("client cert test CA", certgen.ECDSAP256)
	require.NoError(t, err)
	return ca
}

func clientPair(t *testing.T, ca *certgen.CA, cn string) *certgen.Pair {
	t.Helper()
	p, err := ca.Issue(certgen.Options{CommonName: cn, Client: true})
	require.NoError(t, err)
	return p
}

// fileClock gives each rewrite of a watched file a distinct modification
// time, so change detection never depends on the file system's timestamp
// granularity.
type fileClock struct{ n int64 }

func (c *fileClock) write(t *testing.T, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, mode))
	require.NoError(t, os.Chmod(path, mode))
	c.n++
	at := time.Unix(1_700_000_000+c.n, 0)
	require.NoError(t, os.Chtimes(path, at, at))
}

func logTo(buf *bytes.Buffer) func() *slog.Logger {
	l := slog.New(slog.NewTextHandler(buf, nil))
	return func() *slog.Logger { return l }
}

func served(t *testing.T, cc *clientCert) *tls.Certificate {
	t.Helper()
	got, err := cc.getClientCertificate(&tls.CertificateRequestInfo{})
	require.NoError(t, err)
	return got
}

func TestClientCertFilesServesPairWithChain(t *testing.T) {
	t.Parallel()
	root := testCA(t)
	inter, err := certgen.NewIntermediate(root, "client intermediate", certgen.ECDSAP256)
	require.NoError(t, err)
	leaf, err := inter.Issue(certgen.Options{CommonName: "app", Client: true})
	require.NoError(t, err)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	var clock fileClock
	clock.write(t, certPath, leaf.ChainPEM(inter), 0o644)
	clock.write(t, keyPath, leaf.KeyPEM, 0o600)

	cc, err := newClientCertFiles(certPath, keyPath, nil, logTo(new(bytes.Buffer)))
	require.NoError(t, err)
	got := served(t, cc)
	require.Len(t, got.Certificate, 2, "leaf and intermediate are both sent")
	assert.Equal(t, leaf.Cert.Raw, got.Certificate[0])
	assert.Equal(t, inter.Cert.Raw, got.Certificate[1])
	assert.Equal(t, "app", got.Leaf.Subject.CommonName)
	assert.True(t, got.PrivateKey.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.Cert.PublicKey))
	assert.Equal(t, leaf.Cert.Raw, cc.current().Raw)
}

func TestClientCertFilesEncryptedKey(t *testing.T) {
	t.Parallel()
	keyPEM := readFixture(t, keysDir(), "ec-pbes2-aes256-sha256.key")
	plain, err := keyfile.Parse(keyPEM, staticPass(fixturePassphrase))
	require.NoError(t, err)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	var clock fileClock
	clock.write(t, certPath, certFor(t, testCA(t), plain.Public(), "app"), 0o644)
	clock.write(t, keyPath, keyPEM, 0o600)

	cc, err := newClientCertFiles(certPath, keyPath, staticPass(fixturePassphrase), logTo(new(bytes.Buffer)))
	require.NoError(t, err)
	assert.Equal(t, "app", cc.current().Subject.CommonName)

	wrong := "Not-The-Passphrase-42"
	_, err = newClientCertFiles(certPath, keyPath, staticPass(wrong), logTo(new(bytes.Buffer)))
	require.ErrorIs(t, err, shared.ErrKeyPassphrase)
	require.ErrorIs(t, err, shared.ErrInsecureConfig)
	var ce *verify.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "sslpassword", ce.Setting)
	assert.Contains(t, err.Error(), "wrong passphrase for key file "+keyPath)
	assert.NotContains(t, err.Error(), wrong)
	testutil.AssertNoKeyMaterial(t, err.Error(), keyPEM)

	_, err = newClientCertFiles(certPath, keyPath, nil, logTo(new(bytes.Buffer)))
	require.ErrorIs(t, err, shared.ErrInsecureConfig)
	assert.Contains(t, err.Error(), keyPath+" is encrypted and no passphrase was given")
	assert.Contains(t, err.Error(), "ClientKeyPassphrase")
}

func TestClientCertFilesMismatchNamesBothFiles(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	a, b := clientPair(t, ca, "a"), clientPair(t, ca, "b")
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "a.crt"), filepath.Join(dir, "b.key")
	var clock fileClock
	clock.write(t, certPath, a.CertPEM, 0o644)
	clock.write(t, keyPath, b.KeyPEM, 0o600)

	_, err := newClientCertFiles(certPath, keyPath, nil, logTo(new(bytes.Buffer)))
	var ce *verify.ConfigError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, shared.ErrInsecureConfig)
	assert.Contains(t, err.Error(), "the key file "+keyPath+" does not belong to the certificate file "+certPath)
	testutil.AssertNoKeyMaterial(t, err.Error(), b.KeyPEM)
}

func TestClientCertFilesRefusesUnusableFiles(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	good := clientPair(t, ca, "app")
	serverOnly, err := ca.Issue(certgen.Options{CommonName: "server", DNSNames: []string{"db"}})
	require.NoError(t, err)
	cases := []struct {
		name      string
		cert, key []byte
		keyMode   fs.FileMode
		want      string
	}{
		{"no certificate", good.KeyPEM, good.KeyPEM, 0o600, "contains no PEM \"CERTIFICATE\" block"},
		{"no key", good.CertPEM, good.CertPEM, 0o600, "no PEM private key block"},
		{"world-readable key", good.CertPEM, good.KeyPEM, 0o604, "run chmod 06"},
		{"server-only certificate", serverOnly.CertPEM, serverOnly.KeyPEM, 0o600, "not valid for TLS client authentication"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			certPath, keyPath := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
			var clock fileClock
			clock.write(t, certPath, c.cert, 0o644)
			clock.write(t, keyPath, c.key, c.keyMode)
			_, err := newClientCertFiles(certPath, keyPath, nil, logTo(new(bytes.Buffer)))
			require.ErrorIs(t, err, shared.ErrInsecureConfig)
			assert.Contains(t, err.Error(), c.want)
			testutil.AssertNoKeyMaterial(t, err.Error(), c.key)
		})
	}
	_, err = newClientCertFiles(filepath.Join(t.TempDir(), "missing.crt"), filepath.Join(t.TempDir(), "missing.key"), nil, logTo(new(bytes.Buffer)))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestClientCertFilesReloadKeepsLastGoodPair(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	p1, p2, p3 := clientPair(t, ca, "first"), clientPair(t, ca, "second"), clientPair(t, ca, "third")
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	var clock fileClock
	clock.write(t, certPath, p1.CertPEM, 0o644)
	clock.write(t, keyPath, p1.KeyPEM, 0o600)
	var logs bytes.Buffer
	cc, err := newClientCertFiles(certPath, keyPath, nil, logTo(&logs))
	require.NoError(t, err)
	assert.Equal(t, "first", served(t, cc).Leaf.Subject.CommonName)

	// A renewed pair is used by the next handshake.
	clock.write(t, certPath, p2.CertPEM, 0o644)
	clock.write(t, keyPath, p2.KeyPEM, 0o600)
	assert.Equal(t, "second", served(t, cc).Leaf.Subject.CommonName)

	// Half-way through the next renewal: new certificate, old key.
	logs.Reset()
	clock.write(t, certPath, p3.CertPEM, 0o644)
	assert.Equal(t, "second", served(t, cc).Leaf.Subject.CommonName, "a mismatched pair keeps the last good one")
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "does not belong to the certificate file "+certPath)
	testutil.AssertNoKeyMaterial(t, logs.String(), p2.KeyPEM)

	// A half-written certificate file, too.
	clock.write(t, certPath, p3.CertPEM[:len(p3.CertPEM)/2], 0o644)
	assert.Equal(t, "second", cc.current().Subject.CommonName)

	// The renewal completes.
	clock.write(t, certPath, p3.CertPEM, 0o644)
	clock.write(t, keyPath, p3.KeyPEM, 0o600)
	assert.Equal(t, "third", served(t, cc).Leaf.Subject.CommonName)

	// A key file whose permissions were loosened is not loaded.
	logs.Reset()
	clock.write(t, keyPath, p1.KeyPEM, 0o604)
	clock.write(t, certPath, p1.CertPEM, 0o644)
	assert.Equal(t, "third", cc.current().Subject.CommonName)
	assert.Contains(t, logs.String(), "chmod")
}

func TestClientCertPEM(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	p := clientPair(t, ca, "inline")
	cc, err := newClientCertPEM(p.CertPEM, p.KeyPEM, nil)
	require.NoError(t, err)
	assert.Equal(t, "inline", served(t, cc).Leaf.Subject.CommonName)

	other := clientPair(t, ca, "other")
	_, err = newClientCertPEM(p.CertPEM, other.KeyPEM, nil)
	require.ErrorIs(t, err, shared.ErrInsecureConfig)
	assert.Contains(t, err.Error(), "pgsecure: ClientCertPEM: the key given to ClientCertPEM does not belong to the certificate given to ClientCertPEM")

	_, err = newClientCertPEM(p.CertPEM, readFixture(t, keysDir(), "ec-pbes2-aes256-sha256.key"), nil)
	var ce *verify.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "ClientKeyPassphrase", ce.Setting)
}

// TestCheckKeyFilePermissions goes through readKeyFile, the function that
// loads sslkey and ClientCertFiles' key, so it checks the mode of the file
// production opens.
func TestCheckKeyFilePermissions(t *testing.T) {
	t.Parallel()
	type modeCase struct {
		mode fs.FileMode
		want string // "" when accepted
	}
	check := func(t *testing.T, uid int, cases []modeCase) {
		for _, c := range cases {
			path := filepath.Join(t.TempDir(), "client.key")
			require.NoError(t, os.WriteFile(path, []byte("key"), 0o600))
			require.NoError(t, os.Chmod(path, c.mode))
			if uid != os.Geteuid() {
				require.NoError(t, os.Chown(path, uid, -1))
			}
			err := readKeyFileErr(path)
			if c.want == "" {
				assert.NoError(t, err, "mode %04o", c.mode)
				continue
			}
			require.ErrorIs(t, err, shared.ErrInsecureConfig, "mode %04o", c.mode)
			assert.Contains(t, err.Error(), c.want+path)
			assert.Contains(t, err.Error(), "group or world access")
		}
	}
	t.Run("owned by a user", func(t *testing.T) {
		uid := os.Geteuid()
		if uid == 0 {
			uid = 65534 // root may hand the file to an unprivileged user
		}
		check(t, uid, []modeCase{
			{0o600, ""}, {0o400, ""},
			{0o640, "run chmod 0600 "}, {0o604, "run chmod 0600 "}, {0o660, "run chmod 0600 "}, {0o610, "run chmod 0600 "},
		})
	})
	t.Run("owned by root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only root can create a root-owned file")
		}
		check(t, 0, []modeCase{
			{0o600, ""}, {0o640, ""}, {0o440, ""},
			{0o644, "run chmod 0640 "}, {0o660, "run chmod 0640 "}, {0o650, "run chmod 0640 "},
		})
	})
	t.Run("symlink to a private file", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "real.key")
		require.NoError(t, os.WriteFile(target, []byte("key"), 0o600))
		link := filepath.Join(dir, "link.key")
		require.NoError(t, os.Symlink(target, link))
		assert.NoError(t, readKeyFileErr(link), "the file's mode counts, not the link's")
	})
	t.Run("not a regular file", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.Chmod(dir, 0o700))
		err := readKeyFileErr(dir)
		require.ErrorIs(t, err, shared.ErrInsecureConfig)
		assert.Contains(t, err.Error(), "is not a regular file")
	})
	t.Run("missing", func(t *testing.T) {
		err := readKeyFileErr(filepath.Join(t.TempDir(), "none.key"))
		require.ErrorIs(t, err, fs.ErrNotExist)
		assert.True(t, errors.Is(err, shared.ErrInsecureConfig))
	})
}

// readKeyFileErr is readKeyFile's error.
func readKeyFileErr(path string) error {
	_, err := readKeyFile(path)
	return err
}
