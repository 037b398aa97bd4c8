// Package awssm provides database credentials from AWS: secrets stored in AWS
// Secrets Manager (SecretsManager) and RDS IAM authentication tokens (RDSIAM).
//
// Importing the package (for its side effect, if need be) registers the URI
// schemes "awssm" and "rdsiam" with package secrets, so that secrets.Open can
// build these sources from configuration. Programs that do not import it do not
// link the AWS SDK.
//
// # Secrets Manager
//
// A secret holds either the JSON document that RDS-managed and rotation-lambda
// secrets use ({"username", "password", "host", "port", "dbname", "engine"}) or a
// plain string, which is taken as the password of the user named with WithUser.
// Credentials.Version is the secret's VersionId.
//
// With the default stage (AWSCURRENT) the source follows rotation and
// reports so (Rotates): after the database rejected credentials and
// Invalidate was called, the next fetch reads the AWSPENDING version (the
// rotation lambda may already have set that password in the database) and,
// while AWSCURRENT has not moved to it, keeps serving it. If there is no
// usable AWSPENDING version, it reads AWSCURRENT; when that still holds the
// rejected version, it reads again with jittered backoff (from 100 ms doubling,
// up to about 6 s, and never past the caller's deadline) across the rotation
// window, then hands back what AWSCURRENT holds. A rejection of
// credentials that came from AWSPENDING sends the source back to AWSCURRENT.
// The source also offers AWSPREVIOUS (Previous): when the secret was
// rotated before the database password, pgsecure logs in with it while the
// database still has the old password.
// Behind a secrets.Cache (which forwards Invalidate) the pending credentials
// are cached like any others. A JSON secret must name its user; WithUser
// applies only to plain strings, which are used verbatim (no trimming).
//
// # RDS IAM
//
// RDSIAM returns a fresh IAM authentication token as the password on every
// call; a token is valid for 15 minutes and Credentials.Expires says so. Wrap
// the source in a secrets.Cache so that connections share a token and the cache
// refreshes it before it expires. RDS accepts IAM tokens only over TLS, which
// pgsecure always uses.
//
// Its credentials are login tokens (secrets.Credentials.LoginToken): RDS
// checks the token through PAM and asks for it as a cleartext password, which
// pgsecure answers with a login token only, over a TLS connection whose
// handshake it verified. The token matters only at login (AWS documents
// this), so sessions opened with it outlive its Expires: the pool does not
// retire them. Secrets Manager credentials are passwords: they are never sent
// in cleartext, and a server asking for one is refused with
// pgsecure.ErrInsecureAuth.
//
// # URI grammar
//
//	awssm://<secret-name>[?<params>]
//	awssm:///<secret-id>[?<params>]
//	awssm:<secret-id>[?<params>]
//	rdsiam://<user>@<host>[:<port>][?region=<region>]
//
// A secret name whose characters are all allowed in a URI host may stand in the
// host and path ("awssm://prod/db/app"). Names containing '@' and ARNs, which
// contain ':', go in the path after an empty host or in the opaque form:
// "awssm:///arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"
// or "awssm:arn:aws:secretsmanager:...". In every form the characters '%', '?'
// and '#' must be percent-encoded as %25, %3F and %23.
//
// Parameters of awssm (all optional, each at most once):
//
//	region    AWS region; default: the region in an ARN, else the standard
//	          AWS configuration (AWS_REGION, shared config).
//	stage     version stage to read (default AWSCURRENT).
//	version   version id to read (VersionId).
//	user      database user for a plain-string secret.
//	endpoint  https URL of the Secrets Manager endpoint (e.g. a VPC endpoint).
//
// For rdsiam the port defaults to 5432, the region comes from "region" or the
// standard AWS configuration, and the URI must not carry a password.
//
// Both schemes load AWS credentials with the SDK's standard chain
// (config.LoadDefaultConfig: environment, shared files, SSO, web identity,
// container and instance roles). Unknown parameters are rejected.
//
// # Errors
//
// Errors are *secrets.Error values named by the source's URI (Name), never
// contain a secret value or token, wrap the SDK's error (reachable with
// errors.As, e.g. as smithy.APIError) and wrap one of these sentinels:
//
//   - secrets.ErrNotFound: the secret, or the requested version or stage, does
//     not exist.
//   - secrets.ErrUnavailable: throttling, a 5xx answer or a network failure,
//     each after the SDK's own retries. Retrying may help.
//   - secrets.ErrAccessDenied: AWS refused the caller (missing IAM or KMS
//     permission, unknown key, bad signature). Retrying will not help.
//   - secrets.ErrInvalid: the secret's content is not usable, or the source is
//     misconfigured (empty secret id, bad endpoint, no region).
//
// An SDK error that fits none of these is reported as secrets.ErrUnavailable.
// When ctx ends first, the error wraps context.Cause(ctx) and no sentinel.
package awssm
