package awssm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pgsecure/pgsecure/secrets"
)

// Version stages that Secrets Manager rotation uses.
const (
	StageCurrent = "AWSCURRENT"
	StagePending = "AWSPENDING"
)

// Option configures SecretsManager.
type Option func(*smOptions)

type smOptions struct {
	user      string
	stage     string
	versionID string
}

// WithUser names the database user for a secret that is a plain string (the
// password alone, taken verbatim). A JSON secret must name its own user; the
// option does not apply to it.
func WithUser(user string) Option { return func(o *smOptions) { o.user = user } }

// WithVersionStage reads the version carrying this staging label instead of
// AWSCURRENT. A source reading another stage does not follow rotation.
func WithVersionStage(stage string) Option { return func(o *smOptions) { o.stage = stage } }

// WithVersionID reads this exact version (VersionId). Unless WithVersionStage
// is also given, no stage is sent; a pinned source does not follow rotation.
func WithVersionID(id string) Option { return func(o *smOptions) { o.versionID = id } }

// SecretsManager returns a source that reads secretID (a name or an ARN) with
// GetSecretValue, using cfg for region, AWS credentials, endpoint, HTTP client
// and retries.
func SecretsManager(cfg aws.Config, secretID string, opts ...Option) *Source {
	o := smOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	name := "awssm:" + secretID
	sm := &smSource{name: name, id: secretID, opts: o, rotates: o.versionID == "" && (o.stage == "" || o.stage == StageCurrent)}
	if sm.opts.stage == "" && sm.opts.versionID == "" {
		sm.opts.stage = StageCurrent
	}
	src := &Source{name: name, impl: sm}
	switch {
	case secretID == "":
		src.err = misconfigured(name, "empty secret id: give a secret name or ARN")
	case cfg.Region == "":
		src.err = misconfigured(name, "no AWS region: set it in the AWS configuration or the URI (?region=)")
	default:
		sm.client = secretsmanager.NewFromConfig(cfg)
	}
	return src
}

type smSource struct {
	name    string
	id      string
	opts    smOptions
	rotates bool
	client  *secretsmanager.Client

	mu          sync.Mutex
	tryPending  bool   // the next fetch reads AWSPENDING once
	lastPending string // VersionId last returned from AWSPENDING
}

func (s *smSource) invalidate(rejected secrets.Credentials) {
	if !s.rotates {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Pending credentials that were rejected too: go back to AWSCURRENT.
	s.tryPending = rejected.Version == "" || rejected.Version != s.lastPending
}

func (s *smSource) credentials(ctx context.Context) (secrets.Credentials, error) {
	s.mu.Lock()
	pending := s.tryPending
	s.tryPending = false
	s.mu.Unlock()
	if pending {
		c, err := s.get(ctx, "", StagePending)
		if err == nil {
			s.mu.Lock()
			s.lastPending = c.Version
			s.mu.Unlock()
			return c, nil
		}
		if ctx.Err() != nil || !errors.Is(err, secrets.ErrNotFound) {
			return secrets.Credentials{}, err
		}
	}
	return s.get(ctx, s.opts.versionID, s.opts.stage)
}

func (s *smSource) get(ctx context.Context, versionID, stage string) (secrets.Credentials, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.id)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := s.client.GetSecretValue(ctx, in)
	if err != nil {
		return secrets.Credentials{}, classify(ctx, s.name, err)
	}
	value := out.SecretBinary
	if out.SecretString != nil {
		value = []byte(*out.SecretString)
	}
	version := aws.ToString(out.VersionId)
	c, err := s.parse(value, version)
	if err != nil {
		return secrets.Credentials{}, err
	}
	c.Version = version
	c.Source = s.name
	return c, nil
}

// parse turns a secret value into credentials. Its errors never quote value.
func (s *smSource) parse(value []byte, version string) (secrets.Credentials, error) {
	trimmed := bytes.TrimSpace(value)
	if len(trimmed) == 0 {
		return secrets.Credentials{}, misconfigured(s.name, "version "+version+" is empty: store the RDS JSON document or the password")
	}
	if trimmed[0] != '{' {
		if s.opts.user == "" {
			return secrets.Credentials{}, misconfigured(s.name, "version "+version+" is a plain string, not JSON: name the database user with WithUser (URI: ?user=) or store the RDS JSON document")
		}
		return secrets.Credentials{User: s.opts.user, Password: secrets.NewSecret(string(value))}, nil
	}
	c, err := secrets.ParseJSON(trimmed)
	if err != nil {
		return secrets.Credentials{}, fmt.Errorf("pgsecure/awssm: %s: version %s: %w", s.name, version, err)
	}
	return c, nil
}
