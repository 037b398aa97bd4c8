package awssm

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/pgsecure/pgsecure/secrets"
)

// deniedCodes are AWS error codes that mean "who you are, or what you may do".
var deniedCodes = map[string]string{
	"AccessDeniedException":       "the AWS identity may not read this secret: grant secretsmanager:GetSecretValue on it",
	"AccessDenied":                "AWS refused to issue credentials: check the IAM role and its trust policy",
	"UnrecognizedClientException": "AWS does not know the access key: check the AWS credentials",
	"InvalidClientTokenId":        "AWS does not know the access key: check the AWS credentials",
	"InvalidSignatureException":   "AWS rejected the request signature: check the AWS secret access key and the region",
	"IncompleteSignature":         "AWS rejected the request signature: check the AWS credentials",
	"ExpiredTokenException":       "the AWS session token has expired: refresh the AWS credentials",
}

// sdkRetryable says whether the SDK's standard retryer would retry err, i.e.
// whether err is transient (throttling, 5xx, connection failure).
var sdkRetryable = retry.IsErrorRetryables(retry.DefaultRetryables)

// classify turns an error from an AWS call into a *secrets.Error naming the
// source. The SDK's messages carry codes and AWS's own text; decoding
// errors, which may quote the response, are withheld.
func classify(ctx context.Context, name, op string, err error) error {
	var (
		notFound    *types.ResourceNotFoundException
		decryption  *types.DecryptionFailure
		maxTries    *retry.MaxAttemptsError
		apiErr      smithy.APIError
		undecodable *smithy.DeserializationError
	)
	fail := func(kind error, hint string, err error) error {
		return &secrets.Error{Kind: kind, Source: name, Op: op, Hint: hint, Err: err}
	}
	switch {
	case ctx.Err() != nil:
		return fail(nil, "gave up waiting for AWS", fmt.Errorf("%w: %w", context.Cause(ctx), err))
	case errors.As(err, &undecodable):
		return fail(secrets.ErrUnavailable, "AWS sent a response that cannot be decoded",
			secrets.Quiet(err, "(decoding error withheld: it may quote the response)"))
	case errors.As(err, &notFound):
		return fail(secrets.ErrNotFound, "no such secret, version or stage in this account and region; "+
			"check the secret id, region and stage", err)
	case errors.As(err, &decryption):
		return fail(secrets.ErrAccessDenied, "the secret cannot be decrypted; grant kms:Decrypt on its KMS key", err)
	case errors.As(err, &apiErr) && deniedCodes[apiErr.ErrorCode()] != "":
		return fail(secrets.ErrAccessDenied, deniedCodes[apiErr.ErrorCode()], err)
	case errors.As(err, &maxTries), sdkRetryable.IsErrorRetryable(err) == aws.TrueTernary:
		return fail(secrets.ErrUnavailable, "AWS is unavailable or throttling (after the SDK's retries); retry later", err)
	default:
		return fail(secrets.ErrUnavailable, "the AWS call failed", err)
	}
}

// misconfigured reports a source that cannot work as configured.
func misconfigured(name, what string) error {
	return &secrets.Error{Kind: secrets.ErrInvalid, Source: name, Op: "open", Hint: what}
}
