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

// ErrAccessDenied is wrapped when AWS refuses the caller: the IAM identity
// lacks secretsmanager:GetSecretValue (or kms:Decrypt on the secret's key), or
// its access key is unknown or signs wrongly. Retrying will not help until the
// permission or the AWS credentials are fixed; the SDK does not retry it.
var ErrAccessDenied = fmt.Errorf("pgsecure/awssm: AWS denied access: %w", secrets.ErrAccessDenied)

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

// classify wraps an error from an AWS call with a sentinel and a hint.
// The SDK's messages carry codes and AWS's own text; decoding errors, which
// may quote the response, are withheld.
func classify(ctx context.Context, name string, err error) error {
	var (
		notFound    *types.ResourceNotFoundException
		decryption  *types.DecryptionFailure
		maxTries    *retry.MaxAttemptsError
		apiErr      smithy.APIError
		undecodable *smithy.DeserializationError
	)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("pgsecure/awssm: %s: gave up waiting for AWS: %w: %w", name, context.Cause(ctx), err)
	case errors.As(err, &undecodable):
		return fmt.Errorf("pgsecure/awssm: %s: AWS sent a response that cannot be decoded: %w: %w", name, secrets.ErrUnavailable, quiet{err})
	case errors.As(err, &notFound):
		return fmt.Errorf("pgsecure/awssm: %s: no such secret, version or stage in this account and region; check the secret id, region and stage: %w: %w", name, secrets.ErrNotFound, err)
	case errors.As(err, &decryption):
		return fmt.Errorf("pgsecure/awssm: %s: the secret cannot be decrypted; grant kms:Decrypt on its KMS key: %w: %w", name, ErrAccessDenied, err)
	case errors.As(err, &apiErr) && deniedCodes[apiErr.ErrorCode()] != "":
		return fmt.Errorf("pgsecure/awssm: %s: %s: %w: %w", name, deniedCodes[apiErr.ErrorCode()], ErrAccessDenied, err)
	case errors.As(err, &maxTries), sdkRetryable.IsErrorRetryable(err) == aws.TrueTernary:
		return fmt.Errorf("pgsecure/awssm: %s: AWS is unavailable or throttling (after the SDK's retries); retry later: %w: %w", name, secrets.ErrUnavailable, err)
	default:
		return fmt.Errorf("pgsecure/awssm: %s: the AWS call failed: %w: %w", name, secrets.ErrUnavailable, err)
	}
}

// quiet keeps err reachable with errors.Is and errors.As without printing
// it: the SDK's decoding errors may quote bytes of the response, which can be
// part of a secret.
type quiet struct{ err error }

func (q quiet) Error() string { return "(decoding error withheld: it may quote the response)" }
func (q quiet) Unwrap() error { return q.err }

// misconfigured reports a source that cannot work as configured.
func misconfigured(name, what string) error {
	return fmt.Errorf("pgsecure/awssm: %s: %s: %w", name, what, secrets.ErrInvalid)
}
