package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// KubeSecret is a directory laid out as the kubelet mounts a Secret: each
// visible file is a symlink through "..data", which an update swaps
// atomically to a new timestamped directory.
type KubeSecret struct {
	Dir string
	gen int
}

// NewKubeSecret mounts files (name to content) in a temporary directory.
func NewKubeSecret(t testing.TB, files map[string]string) *KubeSecret {
	t.Helper()
	s := &KubeSecret{Dir: t.TempDir()}
	s.Update(t, files)
	for name := range files {
		require.NoError(t, os.Symlink(filepath.Join("..data", name), filepath.Join(s.Dir, name)))
	}
	return s
}

// Update publishes a new generation of the files the way the kubelet does.
// Every file of a generation gets the same modification time, so a change
// is visible only through the swapped "..data" link when sizes match.
func (s *KubeSecret) Update(t testing.TB, files map[string]string) {
	t.Helper()
	s.gen++
	gen := filepath.Join(s.Dir, fmt.Sprintf("..2030_01_01_00_00_%02d.%d", s.gen, s.gen))
	require.NoError(t, os.Mkdir(gen, 0o755))
	for name, content := range files {
		p := filepath.Join(gen, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		require.NoError(t, os.Chtimes(p, kubeTime, kubeTime))
	}
	tmp := filepath.Join(s.Dir, "..data_tmp")
	require.NoError(t, os.Symlink(filepath.Base(gen), tmp))
	require.NoError(t, os.Rename(tmp, filepath.Join(s.Dir, "..data")))
}

var kubeTime = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
