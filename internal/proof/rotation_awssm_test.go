package proof

import (
	"fmt"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/stretchr/testify/require"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pgsecure/pgsecure/internal/awstest"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets/awssm"
	"github.com/stretchr/testify/assert"
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
	t.Parallel()
	testutil.SkipIfShort(t, "the Secrets Manager rotation soak")
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	creds := aws.Credentials{AccessKeyID: "AKIASOAKTEST0000001", SecretAccessKey: "soak-secret-access-key"}
	srv := awstest.New(t, creds, "eu-west-1")
	srv.Put("prod/db", awstest.Version{ID: "v0", Stages: []string{awstest.Current}, String: rdsSecret(appPassword)})
	src := awssm.SecretsManager(srv.Config(creds), "prod/db")
	rotationSoak(t, pki, pg.Port, src, "awssm (AWSPENDING, 3 rotations)", func() {
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
	t.Logf("GetSecretValue calls: %d", len(srv.Requests()))
	assert.True(t, src.Rotates())
}

// TestRotationSecretsManagerPreviousVersion: the secret was rotated first
// (AWSCURRENT holds the new password, AWSPREVIOUS the old one) and the
// database still has the old password. A process that never saw the old
// password builds its pool: the new one is rejected and it logs in with
// AWSPREVIOUS instead of failing.
func TestRotationSecretsManagerPreviousVersion(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	creds := aws.Credentials{AccessKeyID: "AKIAPREVTEST0000001", SecretAccessKey: "previous-secret-access-key"}
	srv := awstest.New(t, creds, "eu-west-1")
	srv.Put("prod/db", awstest.Version{ID: "v0", Stages: []string{awssm.StagePrevious}, String: rdsSecret(appPassword)})
	srv.Put("prod/db", awstest.Version{ID: "v1", Stages: []string{awstest.Current}, String: rdsSecret("Rotated-Ahead-" + appPassword)})
	ctx := ctxT(t, time.Minute)
	pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://%s@localhost:%d/postgres", appUser, pg.Port)).
		RootCAFile(pki.CAFile).Logger(quiet).Credentials(awssm.SecretsManager(srv.Config(creds), "prod/db")).Build(ctx)
	require.NoError(t, err, "the database still accepts AWSPREVIOUS")
	defer pool.Close()
	var user string
	require.NoError(t, pool.QueryRow(ctx, "SELECT current_user").Scan(&user))
	assert.Equal(t, appUser, user)
	assert.Contains(t, srv.Requests(), awstest.Request{SecretID: "prod/db", VersionStage: awssm.StagePrevious})
}
