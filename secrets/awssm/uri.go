package awssm

import (
	"context"
	"net"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/pgsecure/pgsecure/internal/uriparam"
	"github.com/pgsecure/pgsecure/secrets"
)

func init() {
	secrets.Register("awssm", openSecretsManager)
	secrets.Register("rdsiam", openRDSIAM)
}

// smURI is a parsed awssm URI.
type smURI struct {
	id, region, stage, version, user, endpoint string
}

// iamURI is a parsed rdsiam URI.
type iamURI struct {
	user, endpoint, region string
}

func openSecretsManager(ctx context.Context, u *url.URL) (secrets.Source, error) {
	p, err := parseSecretsManagerURI(u)
	if err != nil {
		return nil, err
	}
	cfg, err := loadConfig(ctx, "awssm", p.region)
	if err != nil {
		return nil, err
	}
	if p.endpoint != "" {
		cfg.BaseEndpoint = aws.String(p.endpoint)
	}
	var opts []Option
	if p.stage != "" {
		opts = append(opts, WithVersionStage(p.stage))
	}
	if p.version != "" {
		opts = append(opts, WithVersionID(p.version))
	}
	if p.user != "" {
		opts = append(opts, WithUser(p.user))
	}
	src := SecretsManager(cfg, p.id, opts...)
	if src.err != nil {
		return nil, src.err
	}
	return src, nil
}

func openRDSIAM(ctx context.Context, u *url.URL) (secrets.Source, error) {
	p, err := parseRDSIAMURI(u)
	if err != nil {
		return nil, err
	}
	cfg, err := loadConfig(ctx, "rdsiam", p.region)
	if err != nil {
		return nil, err
	}
	src := RDSIAM(cfg, p.endpoint, "", p.user)
	if src.err != nil {
		return nil, src.err
	}
	return src, nil
}

// loadConfig loads the standard AWS configuration (credential chain, shared
// files, AWS_* variables), with region when it is not empty.
func loadConfig(ctx context.Context, scheme, region string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, &secrets.Error{Kind: secrets.ErrInvalid, Source: scheme + " URI", Op: "load AWS configuration",
			Hint: "check the AWS_* variables and shared config files", Err: err}
	}
	return cfg, nil
}

func parseSecretsManagerURI(u *url.URL) (smURI, error) {
	bad := func(what string) (smURI, error) { return smURI{}, misconfigured("awssm URI", what) }
	var p smURI
	switch {
	case u.User != nil:
		return bad("the secret name contains '@': put it in the path, awssm:///<name>")
	case u.Fragment != "":
		return bad("unexpected '#': percent-encode it as %23")
	case u.Opaque != "":
		id, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return bad("bad percent-encoding in the secret id")
		}
		p.id = id
	case u.Host != "":
		p.id = u.Host + u.Path
	default:
		p.id = strings.TrimPrefix(u.Path, "/")
	}
	if p.id == "" {
		return bad("no secret id: awssm://<name> or awssm:///<arn>")
	}
	q, err := singleParams(u, "region", "stage", "version", "user", "endpoint")
	if err != nil {
		return bad(err.Error())
	}
	p.region, p.stage, p.version, p.user, p.endpoint = q["region"], q["stage"], q["version"], q["user"], q["endpoint"]
	if p.region == "" && strings.HasPrefix(p.id, "arn:") {
		if parts := strings.Split(p.id, ":"); len(parts) > 3 {
			p.region = parts[3]
		}
	}
	if p.endpoint != "" {
		e, err := url.Parse(p.endpoint)
		if err != nil || e.Scheme != "https" || e.Host == "" {
			return bad("endpoint must be an https URL, e.g. endpoint=https://secretsmanager.us-east-1.amazonaws.com")
		}
	}
	return p, nil
}

func parseRDSIAMURI(u *url.URL) (iamURI, error) {
	bad := func(what string) (iamURI, error) { return iamURI{}, misconfigured("rdsiam URI", what) }
	if u.Opaque != "" || u.Hostname() == "" {
		return bad("want rdsiam://<user>@<host>[:<port>]")
	}
	if u.User == nil || u.User.Username() == "" {
		return bad("no database user: rdsiam://<user>@<host>:<port>")
	}
	if _, has := u.User.Password(); has {
		return bad("the URI must not carry a password: the password is the IAM token")
	}
	if (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return bad("unexpected path or fragment after host:port")
	}
	q, err := singleParams(u, "region")
	if err != nil {
		return bad(err.Error())
	}
	endpoint := u.Host
	if u.Port() == "" {
		endpoint = net.JoinHostPort(u.Hostname(), "5432")
	}
	return iamURI{user: u.User.Username(), endpoint: endpoint, region: q["region"]}, nil
}

// singleParams returns the query parameters of u, each allowed at most once
// and only if named in allowed.
func singleParams(u *url.URL, allowed ...string) (map[string]string, error) {
	return uriparam.Parse(u, allowed, nil)
}
