package awssm

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"

	"github.com/pgsecure/pgsecure/secrets"
)

// TokenLifetime is how long an RDS IAM authentication token is accepted.
const TokenLifetime = 15 * time.Minute

// RDSIAM returns a source whose password is a fresh RDS IAM authentication
// token for user at endpoint ("host:port", the address the client connects
// to), signed with cfg's AWS credentials for region (cfg.Region when region is
// empty).
//
// Each Credentials call builds a new token. The returned Credentials carry
// User, Host and Port (the token is valid only for that endpoint) and Expires,
// at most TokenLifetime after the call; they have no Version. Wrap the source
// in a secrets.Cache so that the cache reuses the token and refreshes it before
// Expires. RDS accepts tokens only over TLS.
//
// The credentials are login tokens (secrets.Credentials.LoginToken): pgsecure
// answers RDS's request for a cleartext password with them over verified TLS,
// and keeps the sessions they opened past Expires (the token matters only at
// login).
func RDSIAM(cfg aws.Config, endpoint, region, user string) *Source {
	if region == "" {
		region = cfg.Region
	}
	name := "rdsiam://" + user + "@" + endpoint
	iam := &iamSource{name: name, endpoint: endpoint, region: region, user: user, creds: cfg.Credentials, now: time.Now}
	src := &Source{name: name, impl: iam}
	host, port, err := net.SplitHostPort(endpoint)
	p, perr := strconv.ParseUint(port, 10, 16)
	switch {
	case err != nil || host == "" || perr != nil || p == 0:
		src.err = misconfigured(name, "endpoint must be host:port, e.g. mydb.abc123.us-east-1.rds.amazonaws.com:5432")
	case user == "":
		src.err = misconfigured(name, "empty database user")
	case region == "":
		src.err = misconfigured(name, "no AWS region: pass one or set it in the AWS configuration")
	case cfg.Credentials == nil:
		src.err = misconfigured(name, "no AWS credentials provider in the AWS configuration")
	}
	iam.host, iam.port = host, uint16(p)
	return src
}

type iamSource struct {
	name, endpoint, region, user string
	host                         string
	port                         uint16
	creds                        aws.CredentialsProvider
	now                          func() time.Time
}

func (s *iamSource) credentials(ctx context.Context) (secrets.Credentials, error) {
	issued := s.now()
	token, err := auth.BuildAuthToken(ctx, s.endpoint, s.region, s.user, s.creds)
	if err != nil {
		return secrets.Credentials{}, classify(ctx, s.name, "build IAM token", err)
	}
	return secrets.Credentials{
		User:       s.user,
		Password:   secrets.NewSecret(token),
		Host:       s.host,
		Port:       s.port,
		Expires:    issued.Add(TokenLifetime),
		Source:     s.name,
		LoginToken: true,
	}, nil
}
