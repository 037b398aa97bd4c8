package files

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadRefusesWhatIsNotASmallRegularFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, MaxSize+1), 0o600))
	_, err := Read(big, nil)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), big)

	_, err = Read(dir, nil)
	require.ErrorIs(t, err, ErrNotRegular)
	_, err = Read("/dev/zero", nil)
	require.ErrorIs(t, err, ErrNotRegular, "a device would never end")

	_, err = Read(filepath.Join(dir, "absent"), nil)
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestReadRunsCheckBeforeReading(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(p, []byte("secret-content"), 0o644))
	refused := errors.New("mode too open")
	_, err := Read(p, func(fi fs.FileInfo) error {
		if fi.Mode().Perm()&0o077 != 0 {
			return refused
		}
		return nil
	})
	require.ErrorIs(t, err, refused)
	b, err := Read(p, func(fs.FileInfo) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, "secret-content", string(b))
}

func TestReadTrimmed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(p, []byte(" s.tok3n \n"), 0o600))
	v, err := ReadTrimmed(p, "Vault token")
	require.NoError(t, err)
	assert.Equal(t, "s.tok3n", v)
	require.NoError(t, os.WriteFile(p, []byte("\n"), 0o600))
	_, err = ReadTrimmed(p, "Vault token")
	require.ErrorContains(t, err, "Vault token file "+p+" is empty")
}

// TestStampSeesKubernetesDataSwap: the kubelet updates a secret volume by
// swapping the "..data" symlink to a new directory; the new file may have the
// same size and modification time as the old one (same length password),
// and the stamp must still change.
func TestStampSeesKubernetesDataSwap(t *testing.T) {
	secret := testutil.NewKubeSecret(t, map[string]string{"password": "password-A"})
	p := filepath.Join(secret.Dir, "password")
	before := StampOf(p)
	assert.Equal(t, before, StampOf(p), "unchanged files give equal stamps")

	secret.Update(t, map[string]string{"password": "password-B"}) // same size, same time
	after := StampOf(p)
	assert.NotEqual(t, before, after, "the ..data swap changes the stamp")
	b, err := Read(p, nil)
	require.NoError(t, err)
	assert.Equal(t, "password-B", string(b))
}

func TestStampSeesRewriteAndRemoval(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	missing := StampOf(p)
	require.NoError(t, os.WriteFile(p, []byte("one"), 0o600))
	one := StampOf(p)
	assert.NotEqual(t, missing, one)
	require.NoError(t, os.WriteFile(p, []byte("three"), 0o600))
	assert.NotEqual(t, one, StampOf(p), "a rewrite of another size")
	assert.False(t, strings.Contains(string(StampOf(p)), "three"), "a stamp never holds content")
}

// TestReadUpToOtherBound: ReadUpTo reads a file above MaxSize when its own
// bound allows it, and refuses a larger one with ErrTooLarge naming that
// bound.
func TestReadUpToOtherBound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.crl")
	require.NoError(t, os.WriteFile(p, make([]byte, MaxSize+10), 0o600))
	b, err := ReadUpTo(p, 2<<20, nil)
	require.NoError(t, err)
	assert.Len(t, b, MaxSize+10)
	_, err = ReadUpTo(p, MaxSize, nil)
	assert.ErrorIs(t, err, ErrTooLarge)
	require.NoError(t, os.WriteFile(p, make([]byte, 3<<20), 0o600))
	_, err = ReadUpTo(p, 2<<20, nil)
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "larger than 2 MiB")
}
