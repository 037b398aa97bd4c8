package awssm

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/awstest"
	"github.com/pgsecure/pgsecure/secrets"
)

func TestBadAWSCredentialsAreDenied(t *testing.T) {
	wrongSecret, unknownKey := testCreds, testCreds
	wrongSecret.SecretAccessKey = "not-the-key-the-server-knows"
	unknownKey.AccessKeyID = "AKIAOTHERKEY000000"
	for code, creds := range map[string]aws.Credentials{
		"InvalidSignatureException":   wrongSecret,
		"UnrecognizedClientException": unknownKey,
	} {
		srv, _ := newServer(t)
		_, err := fetch(t, SecretsManager(srv.Config(creds), "prod/db"))

		var apiErr smithy.APIError
		require.ErrorAs(t, err, &apiErr, code)
		assert.Equal(t, code, apiErr.ErrorCode())
		assert.ErrorIs(t, err, secrets.ErrAccessDenied, code)
		assert.NotErrorIs(t, err, secrets.ErrUnavailable, code)
		assert.Contains(t, err.Error(), deniedCodes[code], code)
		assert.Empty(t, srv.Requests(), "a badly signed request must not reach the handler")
		assert.Equal(t, 1, srv.Received(), "the SDK must not retry %s", code)
	}
}

func TestAccessDeniedIsNotRetried(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Fail(1, http.StatusBadRequest, "AccessDeniedException")
	_, err := fetch(t, SecretsManager(cfg, "prod/db"))
	assert.ErrorIs(t, err, secrets.ErrAccessDenied)
	assert.NotErrorIs(t, err, secrets.ErrUnavailable)
	assert.Contains(t, err.Error(), "secretsmanager:GetSecretValue")
	assert.Len(t, srv.Requests(), 1)
}

func TestDecryptionFailureIsDenied(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Fail(1, http.StatusBadRequest, "DecryptionFailure")
	_, err := fetch(t, SecretsManager(cfg, "prod/db"))
	var typed *types.DecryptionFailure
	assert.ErrorAs(t, err, &typed)
	assert.ErrorIs(t, err, secrets.ErrAccessDenied)
	assert.Contains(t, err.Error(), "kms:Decrypt")
}

func TestThrottlingThenSuccess(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Fail(2, http.StatusBadRequest, "ThrottlingException")
	c := mustFetch(t, SecretsManager(cfg, "prod/db"))
	assert.Equal(t, testPassword, c.Password.Reveal())
	assert.Len(t, srv.Requests(), 3, "two throttled attempts, then the SDK's third succeeds")
}

func TestServerErrorsExhaustRetries(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Fail(10, http.StatusServiceUnavailable, "ServiceUnavailable")
	_, err := fetch(t, SecretsManager(cfg, "prod/db"))
	require.ErrorIs(t, err, secrets.ErrUnavailable)
	var resp *awshttp.ResponseError
	require.ErrorAs(t, err, &resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.HTTPStatusCode())
	assert.Len(t, srv.Requests(), 3, "the SDK's standard retryer makes 3 attempts")
}

func TestInternalServiceErrorIsUnavailable(t *testing.T) {
	srv, cfg := newServer(t)
	cfg.RetryMaxAttempts = 1
	cfg.Retryer = nil
	srv.Fail(1, http.StatusInternalServerError, "InternalServiceError")
	_, err := fetch(t, SecretsManager(cfg, "prod/db"))
	var typed *types.InternalServiceError
	assert.ErrorAs(t, err, &typed)
	assert.ErrorIs(t, err, secrets.ErrUnavailable)
	assert.Len(t, srv.Requests(), 1)
}

func TestMissingSecretIsNotFound(t *testing.T) {
	_, cfg := newServer(t)
	for _, src := range []*Source{
		SecretsManager(cfg, "no/such/secret"),
		SecretsManager(cfg, "prod/db", WithVersionStage(StagePending)),
		SecretsManager(cfg, "prod/db", WithVersionID("v9")),
	} {
		_, err := fetch(t, src)
		require.ErrorIs(t, err, secrets.ErrNotFound, src.Name())
		var typed *types.ResourceNotFoundException
		assert.ErrorAs(t, err, &typed)
		assert.Contains(t, err.Error(), src.Name())
	}
}

func TestCancelledContext(t *testing.T) {
	srv, cfg := newServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := SecretsManager(cfg, "prod/db").Credentials(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, secrets.ErrUnavailable)
	assert.Empty(t, srv.Requests())
}

func TestMisconfiguredSecretsManager(t *testing.T) {
	_, cfg := newServer(t)
	noRegion := cfg
	noRegion.Region = ""
	for name, src := range map[string]*Source{
		"empty secret id": SecretsManager(cfg, ""),
		"no AWS region":   SecretsManager(noRegion, "prod/db"),
	} {
		_, err := fetch(t, src)
		require.ErrorIs(t, err, secrets.ErrInvalid, name)
		assert.Contains(t, err.Error(), name)
		src.Invalidate(secrets.Credentials{}) // must not panic on a broken source
	}
}

func TestEmptySecretValueIsInvalid(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Put("blank", awstest.Version{ID: "e1", Stages: []string{StageCurrent}, String: "  \n"})
	_, err := fetch(t, SecretsManager(cfg, "blank", WithUser("app")))
	require.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Contains(t, err.Error(), "version e1 is empty")
}

func TestErrorsAreSecretsErrors(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Fail(1, 400, "AccessDeniedException")
	_, err := fetch(t, SecretsManager(cfg, "prod/db"))
	var e *secrets.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, secrets.ErrAccessDenied, e.Kind)
	assert.Equal(t, "awssm:prod/db", e.Source)
	assert.Equal(t, "GetSecretValue", e.Op)
	assert.Contains(t, e.Hint, "secretsmanager:GetSecretValue")
}
