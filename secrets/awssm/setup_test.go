package awssm

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/awstest"
	"github.com/pgsecure/pgsecure/secrets"
)

const (
	testRegion   = "us-east-1"
	testPassword = "pw-Sup3r$ecret-current"
	testPending  = "pw-Sup3r$ecret-pending"
)

var testCreds = aws.Credentials{AccessKeyID: "AKIATESTKEY0000001", SecretAccessKey: "test-secret-access-key-never-printed"}

// rdsJSON is a secret in the shape RDS and the rotation lambdas write.
func rdsJSON(password string) string {
	return `{"username":"app","password":"` + password + `","host":"db.internal","port":6543,"dbname":"orders","engine":"postgres"}`
}

// newServer starts the Secrets Manager test double with secret "prod/db"
// (version v1 AWSCURRENT) and returns it with an SDK config that talks to it.
func newServer(t *testing.T) (*awstest.Server, aws.Config) {
	t.Helper()
	srv := awstest.New(t, testCreds, testRegion)
	srv.Put("prod/db", awstest.Version{ID: "v1", Stages: []string{StageCurrent}, String: rdsJSON(testPassword)})
	return srv, srv.Config(testCreds)
}

func fetch(t *testing.T, src secrets.Source) (secrets.Credentials, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return src.Credentials(ctx)
}

func mustFetch(t *testing.T, src secrets.Source) secrets.Credentials {
	t.Helper()
	c, err := fetch(t, src)
	require.NoError(t, err)
	return c
}

// stages lists the VersionStage of each request the server saw.
func stages(srv *awstest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		out = append(out, r.VersionStage)
	}
	return out
}
