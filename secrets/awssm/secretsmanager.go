package awssm

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pgsecure/pgsecure/internal/refresh"
	"github.com/pgsecure/pgsecure/secrets"
)

// Version stages that Secrets Manager rotation uses.
const (
	StageCurrent = "AWSCURRENT"
	StagePending = "AWSPENDING"
	// StagePrevious labels the version before the last rotation.
	StagePrevious = "AWSPREVIOUS"
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
	sm := &smSource{name: name, id: secretID, opts: o, rotates: o.versionID == "" && (o.stage == "" || o.stage == StageCurrent),
		jitter: refresh.Rand}
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
	jitter  func() float64

	mu          sync.Mutex
	rejected    *secrets.Credentials // the database rejected these; the next fetch looks past them
	lastPending string               // VersionId last served from AWSPENDING; "" outside a rotation
}

func (s *smSource) invalidate(rejected secrets.Credentials) {
	if !s.rotates {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected = &rejected
}

func (s *smSource) credentials(ctx context.Context) (secrets.Credentials, error) {
	s.mu.Lock()
	rejected := s.rejected
	s.rejected = nil
	s.mu.Unlock()
	if rejected == nil {
		return s.current(ctx)
	}
	return refresh.AwaitNewer(ctx, s.jitter, func(ctx context.Context) (secrets.Credentials, error) {
		return s.afterRejection(ctx, *rejected)
	}, func(c secrets.Credentials) bool { return sameVersion(c, *rejected) })
}

// current reads the configured stage. Inside a rotation window, after
// AWSPENDING was accepted by the database, it keeps serving that version
// until AWSCURRENT moves to it (or it disappears).
func (s *smSource) current(ctx context.Context) (secrets.Credentials, error) {
	c, err := s.get(ctx, s.opts.versionID, s.opts.stage)
	if err != nil {
		return c, err
	}
	s.mu.Lock()
	pending := s.lastPending
	s.mu.Unlock()
	if pending == "" || c.Version == pending {
		s.setPending(pending, "")
		return c, nil
	}
	if p, err := s.get(ctx, pending, ""); err == nil {
		return p, nil
	}
	s.setPending(pending, "")
	return c, nil
}

// afterRejection reads AWSPENDING and returns it unless it is the rejected
// version (or absent); then it reads the configured stage. A pending
// version accepted in an earlier rotation is not trusted on its own: only
// what AWSPENDING holds now counts.
func (s *smSource) afterRejection(ctx context.Context, rejected secrets.Credentials) (secrets.Credentials, error) {
	c, err := s.get(ctx, "", StagePending)
	switch {
	case err == nil && !sameVersion(c, rejected):
		s.mu.Lock()
		s.lastPending = c.Version
		s.mu.Unlock()
		return c, nil
	case err != nil && (ctx.Err() != nil || !errors.Is(err, secrets.ErrNotFound)):
		return secrets.Credentials{}, err
	}
	s.mu.Lock()
	s.lastPending = "" // the pending credentials were rejected too, or there are none: AWSCURRENT
	s.mu.Unlock()
	return s.get(ctx, s.opts.versionID, s.opts.stage)
}

// setPending sets lastPending to to if it still is from.
func (s *smSource) setPending(from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastPending == from {
		s.lastPending = to
	}
}

// sameVersion reports whether c is the version that was rejected.
func sameVersion(c, rejected secrets.Credentials) bool {
	if rejected.Version != "" {
		return c.Version == rejected.Version
	}
	return c.Password.Equal(rejected.Password)
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
		return secrets.Credentials{}, classify(ctx, s.name, "GetSecretValue", err)
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
		return secrets.Credentials{}, &secrets.Error{Kind: secrets.ErrInvalid, Source: s.name, Op: "parse version " + version,
			Hint: "the secret is not usable", Err: err}
	}
	return c, nil
}
