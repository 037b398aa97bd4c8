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
	secret := testutil.NewKubeSecret(t, map[string]string{"username": appUser, "password": appPassword + "\n"})
	ctx := ctxT(t, 2*time.Minute)

	t0 := time.Now()
	pool, err := rotatingPool(t, pki, pg.Port, secrets.File(secret.Dir)).Build(ctx)
	require.NoError(t, err)
	coldStart := time.Since(t0)
	defer pool.Close()

	res := soak.Run(ctx, pool, 4, 10*time.Millisecond, func() {
		for i := range 3 {
			time.Sleep(700 * time.Millisecond)
			pw := fmt.Sprintf("Rotated-%d-%s", i, appPassword)
			pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, pw))
			time.Sleep(200 * time.Millisecond) // the kubelet has not synced yet
			secret.Update(t, map[string]string{"username": appUser, "password": pw + "\n"})
		}
		time.Sleep(700 * time.Millisecond)
	})
	t.Logf("SOAK file (k8s ..data swap, 3 rotations): %s; cold start (Build) %s", res, coldStart.Round(time.Millisecond))
	assert.Zero(t, res.Failed, "failed queries: %v", res.FirstErrors)
	assert.Greater(t, res.Queries, int64(100), "the load ran")
}
