package vaultit

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure"
	vaultsrc "github.com/pgsecure/pgsecure/secrets/vault"
)

// poolUser returns current_user of a fresh pool connection.
func poolUser(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var user string
	err := pool.QueryRow(ctx, "SELECT current_user").Scan(&user)
	return user, err
}

// buildPool builds a pgsecure pool on the test server fed by src.
func (e *env) buildPool(t *testing.T, src *vaultsrc.Source) *pgxpool.Pool {
	t.Helper()
	pool, err := pgsecure.NewBuilder(e.pg.URL("", "", "postgres")).
		RootCAFile(e.pki.CAFile).
		Credentials(src).
		Build(context.Background())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func TestPoolRecoversFromRevokedLease(t *testing.T) {
	e := startVault(t).withPostgres(t)
	ctx := context.Background()
	src := e.source(t, "app", "1h", "2h", vaultsrc.WithRevokeOnClose())

	pool := e.buildPool(t, src)
	before, err := poolUser(ctx, pool)
	require.NoError(t, err)
	creds, err := src.Credentials(ctx)
	require.NoError(t, err)
	require.Equal(t, creds.User, before, "the pool logs in as the Vault-issued role")

	// Vault revokes the lease: the role is dropped. The next connection meets
	// 28P01 with the cached credentials; pgsecure invalidates them (reaching
	// the source's Invalidate), reads a new lease and retries once, within
	// the same query.
	require.NoError(t, e.root.Sys().Revoke(creds.Version))
	pool.Reset()
	after, err := poolUser(ctx, pool)
	require.NoError(t, err, "the first connection after the revocation recovered in place")
	assert.NotEqual(t, before, after)
	fresh, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.Equal(t, fresh.User, after)
	assert.NotEqual(t, creds.Version, fresh.Version)
}

func TestBuildRetriesWithNewLeaseAfterRevocation(t *testing.T) {
	e := startVault(t).withPostgres(t)
	ctx := context.Background()
	src := e.source(t, "app", "1h", "2h", vaultsrc.WithRevokeOnClose())

	// The source holds a lease that Vault has already revoked.
	stale, err := src.Credentials(ctx)
	require.NoError(t, err)
	require.NoError(t, e.root.Sys().Revoke(stale.Version))

	pool := e.buildPool(t, src)
	user, err := poolUser(ctx, pool)
	require.NoError(t, err)
	assert.NotEqual(t, stale.User, user, "Build invalidated the rejected lease and retried with a new one")
}

// TestPoolLeavesTheSourceToItsCaller is issue 13 item 3 as documented on
// secrets.Closer: closing a pool does not close the source it was given
// (the lease stays valid and renewed; a second pool can use the source),
// and the caller's Close revokes the lease (the role can no longer log in).
func TestPoolLeavesTheSourceToItsCaller(t *testing.T) {
	e := startVault(t).withPostgres(t)
	ctx := context.Background()
	src := e.source(t, "owned", "1h", "2h", vaultsrc.WithRevokeOnClose())

	pool := e.buildPool(t, src)
	creds, err := src.Credentials(ctx)
	require.NoError(t, err)
	pool.Close()

	again, err := src.Credentials(ctx)
	require.NoError(t, err, "the source still serves after the pool closed")
	assert.Equal(t, creds.Version, again.Version, "the same lease: the pool did not close or revoke it")
	_, err = e.login(ctx, creds)
	require.NoError(t, err, "the lease's role can still log in after the pool closed")
	second := e.buildPool(t, src)
	user, err := poolUser(ctx, second)
	require.NoError(t, err)
	assert.Equal(t, creds.User, user, "a second pool uses the same source")
	second.Close()

	require.NoError(t, src.Close(ctx))
	_, err = e.login(ctx, creds)
	requireRejected(t, err)
	_, err = src.Credentials(ctx)
	assert.ErrorIs(t, err, vaultsrc.ErrClosed, "a closed source refuses")
}
