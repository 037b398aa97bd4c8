package proof

import (
	"fmt"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/soak"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rotationSoak builds a pool for pg fed by src whose connections are
// recycled every 300 ms (so every rotation meets new connections), runs a
// steady load through it while rotate runs, logs the result as what and
// asserts that no query failed.
func rotationSoak(t *testing.T, pki *testutil.PKI, port int, src secrets.Source, what string, rotate func()) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	t0 := time.Now()
	pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://%s@localhost:%d/postgres?pool_max_conn_lifetime=300ms", appUser, port)).
		RootCAFile(pki.CAFile).Logger(quiet).MaxConns(4).Credentials(src).Build(ctx)
	require.NoError(t, err)
	coldStart := time.Since(t0)
	defer pool.Close()
	res := soak.Run(ctx, pool, 4, 10*time.Millisecond, rotate)
	t.Logf("SOAK %s: %s; cold start (Build) %s", what, res, coldStart.Round(time.Millisecond))
	assert.Zero(t, res.Failed, "failed queries: %v", res.FirstErrors)
	assert.Greater(t, res.Queries, int64(100), "the load ran")
}

// TestRotationSoakKubernetesSecret is issue 13's soak for file sources: a
// steady query load through three password rotations in which the database
// password changes first and the mounted secret follows 200 ms later (a
// kubelet ..data swap). Every query must succeed.
func TestRotationSoakKubernetesSecret(t *testing.T) {
	t.Parallel()
	testutil.SkipIfShort(t, "the Kubernetes secret rotation soak")
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	secret := testutil.NewKubeSecret(t, map[string]string{"username": appUser, "password": appPassword + "\n"})
	rotationSoak(t, pki, pg.Port, secrets.File(secret.Dir), "file (k8s ..data swap, 3 rotations)", func() {
		for i := range 3 {
			time.Sleep(700 * time.Millisecond)
			pw := fmt.Sprintf("Rotated-%d-%s", i, appPassword)
			pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, pw))
			time.Sleep(200 * time.Millisecond) // the kubelet has not synced yet
			secret.Update(t, map[string]string{"username": appUser, "password": pw + "\n"})
		}
		time.Sleep(700 * time.Millisecond)
	})
}

// TestRotationSoakEnv is issue 13's soak for the env source: the process
// environment is rewritten with the new password, then the database password
// changes; new connections meet the rejection of the cached password and
// retry with the rewritten one. Every query must succeed.
func TestRotationSoakEnv(t *testing.T) {
	testutil.SkipIfShort(t, "the environment rotation soak")
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	t.Setenv("SOAK_PGUSER", appUser)
	t.Setenv("SOAK_PGPASSWORD", appPassword)
	src, err := secrets.Open(t.Context(), "env:?prefix=SOAK_")
	require.NoError(t, err)
	rotationSoak(t, pki, pg.Port, src, "env (rewritten, then ALTER ROLE, 3 rotations)", func() {
		for i := range 3 {
			time.Sleep(700 * time.Millisecond)
			pw := fmt.Sprintf("Env-Rotated-%d-%s", i, appPassword)
			t.Setenv("SOAK_PGPASSWORD", pw)
			time.Sleep(100 * time.Millisecond)
			pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, pw))
		}
		time.Sleep(700 * time.Millisecond)
	})
}
