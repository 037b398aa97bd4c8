package awssm

import (
	"context"

	"github.com/pgsecure/pgsecure/secrets"
)

// Source is a secrets.Source backed by AWS, built by SecretsManager or RDSIAM.
// It is safe for concurrent use and does not cache: wrap it in a secrets.Cache
// to share fetches between connections.
//
// A Source built with an invalid configuration reports that (wrapping
// secrets.ErrInvalid) from every Credentials call.
type Source struct {
	name string // e.g. "awssm:prod/db"; not secret
	err  error  // configuration error, reported by every call
	impl fetcher
}

type fetcher interface {
	credentials(ctx context.Context) (secrets.Credentials, error)
}

// rotator is implemented by fetchers that react to rejected credentials.
type rotator interface {
	invalidate(rejected secrets.Credentials)
}

// Rotates implements secrets.Rotator: a Secrets Manager source that follows
// AWSCURRENT rotates; a pinned version or stage, and RDS IAM, do not.
func (s *Source) Rotates() bool {
	sm, ok := s.impl.(*smSource)
	return ok && sm.rotates && s.err == nil
}

var (
	_ secrets.Source      = (*Source)(nil)
	_ secrets.Invalidator = (*Source)(nil)
	_ secrets.Namer       = (*Source)(nil)
	_ secrets.Rotator     = (*Source)(nil)

	_ secrets.PreviousProvider = (*Source)(nil)
)

// Credentials fetches credentials from AWS. See the package documentation for
// the errors it returns.
func (s *Source) Credentials(ctx context.Context) (secrets.Credentials, error) {
	if s.err != nil {
		return secrets.Credentials{}, s.err
	}
	return s.impl.credentials(ctx)
}

// Invalidate tells the source that the database rejected credentials it
// returned. A Secrets Manager source reading AWSCURRENT then looks past them
// on its next fetch (see the package documentation: AWSPENDING, then
// AWSCURRENT again with backoff); other sources ignore the call.
func (s *Source) Invalidate(rejected secrets.Credentials) {
	if r, ok := s.impl.(rotator); ok && s.err == nil {
		r.invalidate(rejected)
	}
}

// Previous implements secrets.PreviousProvider: a Secrets Manager source
// that follows AWSCURRENT returns the version labelled AWSPREVIOUS (the
// credentials before the last rotation, which the database still accepts
// while its password has not changed yet). Other sources, and a secret
// without such a version, return an error wrapping secrets.ErrNotFound.
func (s *Source) Previous(ctx context.Context) (secrets.Credentials, error) {
	sm, ok := s.impl.(*smSource)
	if !ok || !sm.rotates || s.err != nil {
		return secrets.Credentials{}, &secrets.Error{Kind: secrets.ErrNotFound, Source: s.name, Op: "read",
			Hint: "no previous version: only a Secrets Manager source following AWSCURRENT keeps one (AWSPREVIOUS)"}
	}
	return sm.get(ctx, "", StagePrevious)
}

// Name names the source by its redacted URI ("awssm:<secret-id>",
// "rdsiam://<user>@<host>:<port>") for logs and errors; it holds no secret.
func (s *Source) Name() string { return s.name }

// String returns Name.
func (s *Source) String() string { return s.name }
