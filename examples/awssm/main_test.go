package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pgsecure/pgsecure/internal/awstest"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const region = "eu-west-1"

var awsCreds = aws.Credentials{AccessKeyID: "AKIAEXAMPLE000000001", SecretAccessKey: "example-secret-access-key"}

// useAWS points the SDK's standard configuration at the Secrets Manager test
// double: static keys from the environment, its CA bundle, nothing else.
func useAWS(t *testing.T, srv *awstest.Server) {
	ca := filepath.Join(t.TempDir(), "aws-ca.pem")
	require.NoError(t, os.WriteFile(ca, srv.CAPEM(), 0o600))
	awstest.IsolateEnv(t, awsCreds, ca)
}

func TestAWSSecretsManager(t *testing.T) {
	const password = "rotated-by-lambda-Xy9"
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "orders_app", password)
	pg.CreateDatabase(t, "orders", "orders_app")

	srv := awstest.New(t, awsCreds, region)
	srv.Put("prod/db/orders", awstest.Version{ID: "v1", Stages: []string{awstest.Current}, String: fmt.Sprintf(
		`{"username":"orders_app","password":%q,"host":"127.0.0.1","port":%d,"dbname":"orders","engine":"postgres"}`, password, pg.Port)})
	useAWS(t, srv)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	uri := "awssm://prod/db/orders?region=" + region + "&endpoint=" + url.QueryEscape(srv.URL)
	// The DSN must name a TCP host even though the secret overrides it:
	// without one, pgx would default to a unix socket, which pgsecure refuses.
	require.NoError(t, run(ctx, &out, uri, "host=localhost", pki.CAFile))
	assert.Contains(t, out.String(), "connected as orders_app with credentials from awssm:prod/db/orders")
	assert.Contains(t, out.String(), fmt.Sprintf("server 127.0.0.1:%d, TLSv1.3, pg_stat_ssl ssl=true, authentication scram-sha-256", pg.Port))
	assert.NotContains(t, out.String(), password)
	assert.Equal(t, []awstest.Request{{SecretID: "prod/db/orders", VersionStage: awstest.Current}}, srv.Requests(),
		"one signed GetSecretValue, shared by Build's fetch and the connection")
}

func TestAWSSecretsManagerWrongKeys(t *testing.T) {
	pki := testutil.NewPKI(t)
	srv := awstest.New(t, aws.Credentials{AccessKeyID: "AKIAOTHER00000000001", SecretAccessKey: "x"}, region)
	useAWS(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, &bytes.Buffer{}, "awssm://prod/db?region="+region+"&endpoint="+url.QueryEscape(srv.URL), "host=127.0.0.1", pki.CAFile)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "UnrecognizedClientException")
	assert.NotContains(t, err.Error(), awsCreds.SecretAccessKey)
}
