package awssm

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/awstest"
	"github.com/pgsecure/pgsecure/secrets"
)

const arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:prod/db-AbCdEf"

func TestParseSecretsManagerURI(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want smURI
	}{
		{"awssm://prod/db/app", smURI{id: "prod/db/app"}},
		{"awssm://Prod_DB+x=y.z-1?region=us-east-1", smURI{id: "Prod_DB+x=y.z-1", region: "us-east-1"}},
		{"awssm:///" + arn, smURI{id: arn, region: "eu-central-1"}},
		{"awssm:" + arn + "?region=us-west-2", smURI{id: arn, region: "us-west-2"}},
		{"awssm:///ops@team/db", smURI{id: "ops@team/db"}},
		{"awssm:///a%3Fb%23c%25d", smURI{id: "a?b#c%d"}},
		{"awssm:a%3Fb", smURI{id: "a?b"}},
		{"awssm://db?stage=AWSPENDING&version=v7&user=app&endpoint=https%3A%2F%2Fvpce.example%3A8443",
			smURI{id: "db", stage: "AWSPENDING", version: "v7", user: "app", endpoint: "https://vpce.example:8443"}},
	} {
		u, err := url.Parse(tc.uri)
		require.NoError(t, err, tc.uri)
		got, err := parseSecretsManagerURI(u)
		require.NoError(t, err, tc.uri)
		assert.Equal(t, tc.want, got, tc.uri)
	}
}

func TestParseSecretsManagerURIErrors(t *testing.T) {
	for uri, want := range map[string]string{
		"awssm://ops@team/db":                      "put it in the path",
		"awssm://db#frag":                          "%23",
		"awssm://":                                 "no secret id",
		"awssm:///":                                "no secret id",
		"awssm://db?regoin=us-east-1":              `parameter "regoin" is not known; did you mean "region"?`,
		"awssm://db?stage=A&stage=B":               `"stage" appears 2 times`,
		"awssm://db?endpoint=http://plain.example": "https URL",
		"awssm://db?endpoint=%3A%2F%2F":            "https URL",
		"awssm://db?a=%zz":                         "query is malformed",
	} {
		u, err := url.Parse(uri)
		require.NoError(t, err, uri)
		_, err = parseSecretsManagerURI(u)
		require.ErrorIs(t, err, secrets.ErrInvalid, uri)
		assert.Contains(t, err.Error(), want, uri)
	}
}

func TestParseRDSIAMURI(t *testing.T) {
	for uri, want := range map[string]iamURI{
		"rdsiam://app@db.example.com:6432?region=eu-west-1": {user: "app", endpoint: "db.example.com:6432", region: "eu-west-1"},
		"rdsiam://app@db.example.com":                       {user: "app", endpoint: "db.example.com:5432"},
		"rdsiam://app@[2001:db8::1]/":                       {user: "app", endpoint: "[2001:db8::1]:5432"},
	} {
		u, err := url.Parse(uri)
		require.NoError(t, err, uri)
		got, err := parseRDSIAMURI(u)
		require.NoError(t, err, uri)
		assert.Equal(t, want, got, uri)
	}
}

func TestParseRDSIAMURIErrors(t *testing.T) {
	for uri, want := range map[string]string{
		"rdsiam://db.example.com:5432":            "no database user",
		"rdsiam://app:hunter2@db.example.com":     "must not carry a password",
		"rdsiam://app@db.example.com:5432/orders": "unexpected path",
		"rdsiam://app@db.example.com?user=x":      `parameter "user" is not known`,
		"rdsiam:app@db":                           "want rdsiam://",
	} {
		u, err := url.Parse(uri)
		require.NoError(t, err, uri)
		_, err = parseRDSIAMURI(u)
		require.ErrorIs(t, err, secrets.ErrInvalid, uri)
		assert.Contains(t, err.Error(), want, uri)
		assert.NotContains(t, err.Error(), "hunter2")
	}
}

// isolateAWSEnv makes config.LoadDefaultConfig see only static credentials
// from the environment and, when caFile is set, trust only that CA bundle.
func isolateAWSEnv(t *testing.T, caFile string) {
	awstest.IsolateEnv(t, testCreds, caFile)
}

func TestOpenSecretsManagerURI(t *testing.T) {
	srv, _ := newServer(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, srv.CAPEM(), 0o600))
	isolateAWSEnv(t, ca)

	src, err := secrets.Open(context.Background(), "awssm://prod/db?region="+testRegion+"&endpoint="+url.QueryEscape(srv.URL))
	require.NoError(t, err)
	c := mustFetch(t, src)
	assert.Equal(t, testPassword, c.Password.Reveal())
	assert.Equal(t, "awssm:prod/db", secrets.NameOf(src))
	assert.Len(t, srv.Requests(), 1)
}

func TestOpenSecretsManagerURINeedsRegion(t *testing.T) {
	isolateAWSEnv(t, "")
	_, err := secrets.Open(context.Background(), "awssm://prod/db")
	require.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Contains(t, err.Error(), "no AWS region")
}

func TestOpenRDSIAMURI(t *testing.T) {
	isolateAWSEnv(t, "")
	src, err := secrets.Open(context.Background(), "rdsiam://app@db.example.com:6432?region=ap-south-1")
	require.NoError(t, err)
	c := mustFetch(t, src)
	assert.Equal(t, "app", c.User)
	assert.EqualValues(t, 6432, c.Port)
	token := c.Password.Reveal()
	assert.True(t, strings.HasPrefix(token, "db.example.com:6432"), "token starts with the endpoint")
	assert.Contains(t, token, testCreds.AccessKeyID+"%2F")
	assert.Contains(t, token, "%2Fap-south-1%2Frds-db%2F")
}

func TestSchemesRegistered(t *testing.T) {
	assert.Subset(t, secrets.Schemes(), []string{"awssm", "rdsiam"})
}
