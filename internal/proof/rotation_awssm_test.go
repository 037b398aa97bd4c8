package proof

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pgsecure/pgsecure/internal/awstest"
	"github.com/pgsecure/pgsecure/internal/soak"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets/awssm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rdsSecret(password string) string {
	return fmt.Sprintf(`{"engine":"postgres","username":%q,"password":%q}`, appUser, password)
}

// TestRotationSoakSecretsManager is issue 13's soak for AWS Secrets Manager:
// the real SDK against the SigV4-checking test server and a real PostgreSQL,
// a steady query load through three rotations performed the way the
// single-user rotation lambda does (createSecret puts AWSPENDING, setSecret
// changes the database password, finishSecret moves AWSCURRENT). Between
// setSecret and finishSecret the cached AWSCURRENT password is rejected;
// every query must still succeed, through AWSPENDING.
func TestRotationSoakSecretsManager(t *testing.T) {
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	creds := aws.Credentials{AccessKeyID: "AKIASOAKTEST0000001", SecretAccessKey: "soak-secret-access-key"}
	srv := awstest.New(t, creds, "eu-west-1")
	srv.Put("prod/db", awstest.Version{ID: "v0", Stages: []string{awstest.Current}, String: rdsSecret(appPassword)})
	src := awssm.SecretsManager(srv.Config(creds), "prod/db")
	ctx := ctxT(t, 2*time.Minute)

	t0 := time.Now()
	pool, err := rotatingPool(t, pki, pg.Port, src).Build(ctx)
	require.NoError(t, err)
	coldStart := time.Since(t0)
	defer pool.Close()

	res := soak.Run(ctx, pool, 4, 10*time.Millisecond, func() {
		for i := 1; i <= 3; i++ {
			time.Sleep(500 * time.Millisecond)
			pw := fmt.Sprintf("Rotated-%d-%s", i, appPassword)
			id := fmt.Sprintf("v%d", i)
			srv.Put("prod/db", awstest.Version{ID: id, Stages: []string{awstest.Pending}, String: rdsSecret(pw)}) // createSecret
			time.Sleep(200 * time.Millisecond)
			pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, pw))                                   // setSecret
			time.Sleep(500 * time.Millisecond)                                                                    // testSecret
			srv.Put("prod/db", awstest.Version{ID: id, Stages: []string{awstest.Current}, String: rdsSecret(pw)}) // finishSecret
		}
		time.Sleep(500 * time.Millisecond)
	})
	t.Logf("SOAK awssm (AWSPENDING, 3 rotations): %s; cold start (Build) %s; GetSecretValue calls %d",
		res, coldStart.Round(time.Millisecond), len(srv.Requests()))
	assert.Zero(t, res.Failed, "failed queries: %v", res.FirstErrors)
	assert.Greater(t, res.Queries, int64(100), "the load ran")
	assert.True(t, src.Rotates())
}
