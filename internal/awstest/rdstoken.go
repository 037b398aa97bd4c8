package awstest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// emptyPayloadHash is SHA-256 of the empty body, which RDS tokens sign.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// RDSTokenCheck returns a check for the database side of an RDS IAM login
// (testutil.PAMLogin.Check): the password must be an IAM token of the form
// host:port/?Action=connect&DBUser=USER&X-Amz-... (the SDK leaves out the
// "/"), for endpoint and the user logging in, presigned with SigV4 by keys
// for the rds-db service in region, with X-Amz-Expires=900 and not stale.
// The signature is re-computed, so a token signed with other keys, for
// another endpoint or user, or altered, is rejected.
func RDSTokenCheck(endpoint, region string, keys aws.Credentials) func(user, token string) error {
	return func(user, token string) error {
		hostPort, query, ok := strings.Cut(token, "?")
		if !ok {
			return errors.New("not host:port/?query")
		}
		if strings.TrimSuffix(hostPort, "/") != endpoint {
			return fmt.Errorf("token for endpoint %q, not %q", hostPort, endpoint)
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return err
		}
		scope := strings.Split(q.Get("X-Amz-Credential"), "/")
		switch {
		case q.Get("Action") != "connect":
			return errors.New("Action is not connect")
		case q.Get("DBUser") != user:
			return fmt.Errorf("token for user %q, not %q", q.Get("DBUser"), user)
		case q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
			return errors.New("X-Amz-Algorithm")
		case len(scope) != 5 || scope[0] != keys.AccessKeyID || scope[2] != region || scope[3] != "rds-db" || scope[4] != "aws4_request":
			return errors.New("X-Amz-Credential")
		case q.Get("X-Amz-SignedHeaders") != "host":
			return errors.New("X-Amz-SignedHeaders")
		}
		signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
		if err != nil {
			return err
		}
		expires, err := strconv.Atoi(q.Get("X-Amz-Expires"))
		if err != nil || expires != 900 {
			return errors.New("X-Amz-Expires")
		}
		if age := time.Since(signed); age > time.Duration(expires)*time.Second || age < -5*time.Minute {
			return errors.New("stale token")
		}
		req, err := http.NewRequest(http.MethodGet, "https://"+endpoint+"/?Action=connect&DBUser="+url.QueryEscape(user)+"&X-Amz-Expires=900", nil)
		if err != nil {
			return err
		}
		again, _, err := v4.NewSigner().PresignHTTP(context.Background(), keys, req, emptyPayloadHash, "rds-db", region, signed)
		if err != nil {
			return err
		}
		u, err := url.Parse(again)
		if err != nil {
			return err
		}
		if u.Query().Get("X-Amz-Signature") != q.Get("X-Amz-Signature") {
			return errors.New("bad signature")
		}
		return nil
	}
}
