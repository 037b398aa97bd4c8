package awstest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var creds = aws.Credentials{AccessKeyID: "AKIATESTKEY0000001", SecretAccessKey: "server-test-secret"}

// tamper rewrites the request body after the SDK signed it.
type tamper struct{ next http.RoundTripper }

func (t tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	body = bytes.ReplaceAll(body, []byte("prod/db"), []byte("prod/xx"))
	r.Body = io.NopCloser(bytes.NewReader(body))
	return t.next.RoundTrip(r)
}

func TestSignatureCoversTheBody(t *testing.T) {
	srv := New(t, creds, "eu-west-1")
	srv.Put("prod/xx", Version{ID: "x", Stages: []string{Current}, String: "s"})
	cfg := srv.Config(creds)
	hc := srv.HTTPClient()
	hc.Transport = tamper{hc.Transport}
	cfg.HTTPClient = hc

	_, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(context.Background(),
		&secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")})
	var apiErr smithy.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "InvalidSignatureException", apiErr.ErrorCode())
	assert.Empty(t, srv.Requests())
}

func TestSignatureScopedToRegion(t *testing.T) {
	srv := New(t, creds, "eu-west-1")
	srv.Put("prod/db", Version{ID: "x", Stages: []string{Current}, String: "s"})
	cfg := srv.Config(creds)
	cfg.Region = "us-west-2"

	_, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(context.Background(),
		&secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")})
	var apiErr smithy.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "InvalidSignatureException", apiErr.ErrorCode())
}

func TestPutMovesStages(t *testing.T) {
	srv := New(t, creds, "eu-west-1")
	srv.Put("s", Version{ID: "1", Stages: []string{Current}, String: "one"})
	srv.Put("s", Version{ID: "2", Stages: []string{Current}, String: "two"})
	out, err := secretsmanager.NewFromConfig(srv.Config(creds)).GetSecretValue(context.Background(),
		&secretsmanager.GetSecretValueInput{SecretId: aws.String(srv.ARN("s"))})
	require.NoError(t, err)
	assert.Equal(t, "2", aws.ToString(out.VersionId))
	assert.Equal(t, "two", aws.ToString(out.SecretString))
	assert.Equal(t, []string{Current}, out.VersionStages)
}
