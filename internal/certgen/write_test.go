package certgen

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Mode().Perm()
}

func TestWriteKeyPairModesAndContent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "certs")
	certPath, keyPath, err := WriteKeyPair(dir, "server", []byte("CERT\n"), []byte("KEY\n"), false)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "server.crt"), certPath)
	assert.Equal(t, filepath.Join(dir, "server.key"), keyPath)
	assert.Equal(t, fs.FileMode(0o644), mode(t, certPath))
	assert.Equal(t, fs.FileMode(0o600), mode(t, keyPath))
	got, err := os.ReadFile(certPath)
	require.NoError(t, err)
	assert.Equal(t, "CERT\n", string(got))
	got, err = os.ReadFile(keyPath)
	require.NoError(t, err)
	assert.Equal(t, "KEY\n", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary files may be left behind")
}

func TestWriteKeyPairRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	_, _, err := WriteKeyPair(dir, "server", []byte("old cert"), []byte("old key"), false)
	require.NoError(t, err)

	_, _, err = WriteKeyPair(dir, "server", []byte("new cert"), []byte("new key"), false)
	require.ErrorIs(t, err, ErrFileExists)
	require.ErrorIs(t, err, fs.ErrExist)
	assert.Contains(t, err.Error(), "use --force")
	assert.NotContains(t, err.Error(), "new key")
	got, _ := os.ReadFile(filepath.Join(dir, "server.key"))
	assert.Equal(t, "old key", string(got))
	got, _ = os.ReadFile(filepath.Join(dir, "server.crt"))
	assert.Equal(t, "old cert", string(got))

	// Only the key exists: nothing may be written, not even the certificate.
	only := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(only, "client.key"), []byte("k"), 0o600))
	_, _, err = WriteKeyPair(only, "client", []byte("c"), []byte("k2"), false)
	require.ErrorIs(t, err, ErrFileExists)
	_, statErr := os.Stat(filepath.Join(only, "client.crt"))
	require.ErrorIs(t, statErr, fs.ErrNotExist)
}

func TestWriteKeyPairForceReplacesAndTightensMode(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "server.key")
	require.NoError(t, os.WriteFile(keyPath, []byte("old key"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "server.crt"), []byte("old cert"), 0o600))

	certPath, gotKey, err := WriteKeyPair(dir, "server", []byte("new cert"), []byte("new key"), true)
	require.NoError(t, err)
	assert.Equal(t, keyPath, gotKey)
	assert.Equal(t, fs.FileMode(0o600), mode(t, keyPath))
	assert.Equal(t, fs.FileMode(0o644), mode(t, certPath))
	got, _ := os.ReadFile(keyPath)
	assert.Equal(t, "new key", string(got))
	got, _ = os.ReadFile(certPath)
	assert.Equal(t, "new cert", string(got))
}

func TestWriteKeyPairRejectsPathNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "../x", "a/b", `a\b`} {
		_, _, err := WriteKeyPair(t.TempDir(), name, nil, nil, false)
		require.ErrorIs(t, err, ErrInvalidOptions, "name %q", name)
	}
}
