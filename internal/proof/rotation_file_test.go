package proof

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/soak"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// k8sSecret is a directory laid out as the kubelet mounts a Secret: the
// visible files are symlinks through "..data", which an update swaps
// atomically to a new timestamped directory.
type k8sSecret struct {
	dir string
	gen int
}

func newK8sSecret(t *testing.T, user, password string) *k8sSecret {
	s := &k8sSecret{dir: t.TempDir()}
	s.write(t, user, password)
	for _, name := range []string{"username", "password"} {
		require.NoError(t, os.Symlink(filepath.Join("..data", name), filepath.Join(s.dir, name)))
	}
	return s
}

// write publishes a new generation the way the kubelet does.
func (s *k8sSecret) write(t *testing.T, user, password string) {
	s.gen++
	gen := filepath.Join(s.dir, fmt.Sprintf("..2030_01_01_00_00_%02d.%d", s.gen, s.gen))
	require.NoError(t, os.Mkdir(gen, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(gen, "username"), []byte(user), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(gen, "password"), []byte(password+"\n"), 0o600))
	tmp := filepath.Join(s.dir, "..data_tmp")
	require.NoError(t, os.Symlink(filepath.Base(gen), tmp))
	require.NoError(t, os.Rename(tmp, filepath.Join(s.dir, "..data")))
}

// rotatingPool builds a pool whose connections are recycled every few
// hundred milliseconds, so that every rotation is met by new connections.
func rotatingPool(t *testing.T, pki *testutil.PKI, port int, src secrets.Source) *pgsecure.Builder {
	return pgsecure.NewBuilder(fmt.Sprintf("postgres://%s@localhost:%d/postgres?pool_max_conn_lifetime=300ms", appUser, port)).
		RootCAFile(pki.CAFile).Logger(quiet).MaxConns(4).Credentials(src)
}

// TestRotationSoakKubernetesSecret is issue 13's soak for file sources: a
// steady query load through three password rotations in which the database
// password changes first and the mounted secret follows 200 ms later (a
// kubelet ..data swap). Every query must succeed.
func TestRotationSoakKubernetesSecret(t *testing.T) {
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	secret := newK8sSecret(t, appUser, appPassword)
	ctx := ctxT(t, 2*time.Minute)

	t0 := time.Now()
	pool, err := rotatingPool(t, pki, pg.Port, secrets.File(secret.dir)).Build(ctx)
	require.NoError(t, err)
	coldStart := time.Since(t0)
	defer pool.Close()

	res := soak.Run(ctx, pool, 4, 10*time.Millisecond, func() {
		for i := range 3 {
			time.Sleep(700 * time.Millisecond)
			pw := fmt.Sprintf("Rotated-%d-%s", i, appPassword)
			pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, pw))
			time.Sleep(200 * time.Millisecond) // the kubelet has not synced yet
			secret.write(t, appUser, pw)
		}
		time.Sleep(700 * time.Millisecond)
	})
	t.Logf("SOAK file (k8s ..data swap, 3 rotations): %s; cold start (Build) %s", res, coldStart.Round(time.Millisecond))
	assert.Zero(t, res.Failed, "failed queries: %v", res.FirstErrors)
	assert.Greater(t, res.Queries, int64(100), "the load ran")
}
