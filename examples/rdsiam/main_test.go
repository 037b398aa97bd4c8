package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/awstest"
	"github.com/pgsecure/pgsecure/internal/testutil"
)

// TestRDSIAMExample runs the example against PostgreSQL checking RDS IAM
// tokens through PAM, as RDS does, with AWS credentials from the SDK's
// standard chain (the environment).
func TestRDSIAMExample(t *testing.T) {
	keys := aws.Credentials{AccessKeyID: "AKIAEXAMPLE000000002", SecretAccessKey: "example-secret-access-key"}
	awstest.IsolateEnv(t, keys, "")
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.Exec(t, "CREATE ROLE app LOGIN")
	endpoint := fmt.Sprintf("localhost:%d", pg.Port)
	pam := pg.UsePAM(t, testutil.PAMLogin{Roles: []string{"app"}, Check: awstest.RDSTokenCheck(endpoint, "eu-west-1", keys)})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, "rdsiam://app@"+endpoint+"?region=eu-west-1", "host=localhost dbname=postgres", pki.CAFile))
	assert.Contains(t, out.String(), "connected as app with a login token from rdsiam://app@"+endpoint)
	assert.Contains(t, out.String(), "pg_stat_ssl ssl=true, authentication password, proof server query")
	require.NotEmpty(t, pam.Attempts())
	assert.NoError(t, pam.Attempts()[0].Err)
	assert.NotContains(t, out.String(), pam.Attempts()[0].Password)
}
