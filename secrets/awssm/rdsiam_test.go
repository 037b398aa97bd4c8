package awssm

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/secrets"
)

func iamConfig() aws.Config {
	return aws.Config{Region: "eu-west-1", Credentials: credentials.StaticCredentialsProvider{Value: testCreds}}
}

func TestRDSIAMTokenShape(t *testing.T) {
	src := RDSIAM(iamConfig(), "mydb.abc123.eu-west-1.rds.amazonaws.com:5432", "", "app")
	c := mustFetch(t, src)
	assert.Equal(t, "app", c.User)
	assert.Equal(t, "mydb.abc123.eu-west-1.rds.amazonaws.com", c.Host)
	assert.EqualValues(t, 5432, c.Port)
	assert.Equal(t, "rdsiam://app@mydb.abc123.eu-west-1.rds.amazonaws.com:5432", c.Source)

	token := c.Password.Reveal()
	// The SDK writes host:port?query; AWS's CLI writes host:port/?query. Both
	// sign the canonical path "/".
	hostPort, query, ok := strings.Cut(token, "?")
	require.True(t, ok, "token is host:port?query")
	assert.Equal(t, "mydb.abc123.eu-west-1.rds.amazonaws.com:5432", strings.TrimSuffix(hostPort, "/"))
	q, err := url.ParseQuery(query)
	require.NoError(t, err)
	assert.Equal(t, "connect", q.Get("Action"))
	assert.Equal(t, "app", q.Get("DBUser"))
	assert.Equal(t, "AWS4-HMAC-SHA256", q.Get("X-Amz-Algorithm"))
	assert.Equal(t, "900", q.Get("X-Amz-Expires"))
	assert.Equal(t, "host", q.Get("X-Amz-SignedHeaders"))
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	require.Len(t, scope, 5)
	assert.Equal(t, []string{testCreds.AccessKeyID, "eu-west-1", "rds-db", "aws4_request"},
		[]string{scope[0], scope[2], scope[3], scope[4]})
	assert.Len(t, q.Get("X-Amz-Signature"), 64)

	// The signature is the one the test credentials make for that request.
	signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, "https://"+hostPort+"?Action=connect&DBUser=app&X-Amz-Expires=900", nil)
	require.NoError(t, err)
	again, _, err := v4.NewSigner().PresignHTTP(context.Background(), testCreds, req,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "rds-db", "eu-west-1", signed)
	require.NoError(t, err)
	assert.Equal(t, "https://"+token, again)
}

func TestRDSIAMExpiry(t *testing.T) {
	src := RDSIAM(iamConfig(), "db.example.com:6432", "us-east-2", "app")
	issued := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	src.impl.(*iamSource).now = func() time.Time { return issued }
	c := mustFetch(t, src)
	assert.Equal(t, issued.Add(15*time.Minute), c.Expires)
	assert.Contains(t, c.Password.Reveal(), "%2Fus-east-2%2Frds-db%2F", "explicit region wins over cfg.Region")
}

func TestRDSIAMFreshTokenEachCall(t *testing.T) {
	src := RDSIAM(iamConfig(), "db.example.com:5432", "", "app")
	calls := 0
	src.impl.(*iamSource).creds = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		calls++
		return testCreds, nil
	})
	mustFetch(t, src)
	mustFetch(t, src)
	assert.Equal(t, 2, calls, "the source does not cache; a secrets.Cache does")
}

func TestRDSIAMMisconfigured(t *testing.T) {
	noCreds := iamConfig()
	noCreds.Credentials = nil
	noRegion := iamConfig()
	noRegion.Region = ""
	for _, tc := range []struct {
		src  *Source
		want string
	}{
		{RDSIAM(iamConfig(), "db.example.com", "", "app"), "endpoint must be host:port"},
		{RDSIAM(iamConfig(), "db.example.com:0", "", "app"), "endpoint must be host:port"},
		{RDSIAM(iamConfig(), ":5432", "", "app"), "endpoint must be host:port"},
		{RDSIAM(iamConfig(), "db.example.com:5432", "", ""), "empty database user"},
		{RDSIAM(noRegion, "db.example.com:5432", "", "app"), "no AWS region"},
		{RDSIAM(noCreds, "db.example.com:5432", "", "app"), "no AWS credentials provider"},
	} {
		_, err := fetch(t, tc.src)
		require.ErrorIs(t, err, secrets.ErrInvalid, tc.want)
		assert.Contains(t, err.Error(), tc.want)
	}
}

var errNoCreds = errors.New("no credentials in the chain")

func TestRDSIAMCredentialFailure(t *testing.T) {
	cfg := iamConfig()
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errNoCreds
	})
	_, err := fetch(t, RDSIAM(cfg, "db.example.com:5432", "", "app"))
	assert.ErrorIs(t, err, errNoCreds)
	assert.ErrorIs(t, err, secrets.ErrUnavailable)
	assert.Contains(t, err.Error(), "rdsiam://app@db.example.com:5432")
}
