package connect

import (
	"context"

	"github.com/jackc/pgx/v5/pgconn"
)

// Install puts the pipeline's stages around the hooks cc has now (pgx's
// defaults, or a caller's), so those run after pgsecure's checks. It does
// not touch TLS configurations (the root package binds those per host).
// Installing again on a copy that already carries the stages is harmless:
// every stage notices that an outer one did its work.
func Install(cc *pgconn.Config, p *Policy) {
	l := &lookupStage{real: cc.LookupFunc}
	cc.LookupFunc = l.lookup
	cc.DialFunc = (&dialStage{policy: p, resolve: l.resolve, next: cc.DialFunc}).dial
	cc.AfterNetConnect = (&localStage{policy: p, next: cc.AfterNetConnect}).afterNetConnect
	cc.BuildFrontend = (&frontendStage{policy: p, next: cc.BuildFrontend}).buildFrontend
	cc.ValidateConnect = (&proofStage{policy: p, next: cc.ValidateConnect}).validate
	cc.AfterConnect = (&proofStage{policy: p, next: cc.AfterConnect}).validate
}

// lookupStage is installed as LookupFunc. pgx calls it for every host
// before dialling: it returns the host name unresolved, so that the dial
// stage receives "host:port" and knows the name the certificate must
// match. The dial stage resolves the name through resolve, which reaches
// the LookupFunc the configuration had before (through any pgsecure stages
// in between).
type lookupStage struct {
	real pgconn.LookupFunc
}

type resolveKey struct{}

func (l *lookupStage) lookup(ctx context.Context, host string) ([]string, error) {
	if ctx.Value(resolveKey{}) != nil {
		return l.real(ctx, host)
	}
	return []string{host}, nil
}

func (l *lookupStage) resolve(ctx context.Context, host string) ([]string, error) {
	return l.real(context.WithValue(ctx, resolveKey{}, true), host)
}
