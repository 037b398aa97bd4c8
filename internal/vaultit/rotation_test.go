package vaultit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/soak"
	"github.com/pgsecure/pgsecure/secrets"
	vaultsrc "github.com/pgsecure/pgsecure/secrets/vault"
)

// soakPool builds a pool fed by src whose connections are recycled every
// few hundred milliseconds, so that every rotation meets new connections.
// It returns the pool and how long Build (the cold start: first fetch and
// first connection) took.
func (e *env) soakPool(t *testing.T, src secrets.Source) (*pgxpool.Pool, time.Duration) {
	t.Helper()
	t0 := time.Now()
	pool, err := pgsecure.NewBuilder(e.pg.URL("", "", "postgres") + "?pool_max_conn_lifetime=300ms").
		RootCAFile(e.pki.CAFile).MaxConns(4).Credentials(src).Build(context.Background())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, time.Since(t0)
}

// versions records the distinct credential versions src hands out.
type versions struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (v *versions) watch(ctx context.Context, src secrets.Source) {
	v.seen = map[string]bool{}
	go func() {
		for ctx.Err() == nil {
			if c, err := src.Credentials(ctx); err == nil {
				v.mu.Lock()
				v.seen[c.Version] = true
				v.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

func (v *versions) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.seen)
}

// TestRotationSoakVaultDynamic is issue 13's soak for Vault dynamic
// credentials: real Vault issuing real PostgreSQL roles with a 4 s lease
// (max 10 s), a steady query load across renewals, lease replacement at the
// max TTL and a revocation behind the source's back. Every query must
// succeed.
func TestRotationSoakVaultDynamic(t *testing.T) {
	e := startVault(t).withPostgres(t)
	src := e.source(t, "soak", "4s", "10s")
	pool, coldStart := e.soakPool(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen versions
	seen.watch(ctx, src)

	res := soak.Run(ctx, pool, 4, 10*time.Millisecond, func() {
		time.Sleep(12 * time.Second) // the first lease reaches its max TTL and is replaced
		c, err := src.Credentials(ctx)
		if assert.NoError(t, err) {
			assert.NoError(t, e.root.Sys().Revoke(c.Version), "revoke the lease in use")
		}
		time.Sleep(4 * time.Second)
	})
	t.Logf("SOAK vault dynamic (4 s leases, max TTL 10 s, 1 revocation): %s; cold start (Build) %s; leases used %d",
		res, coldStart.Round(time.Millisecond), seen.count())
	assert.Zero(t, res.Failed, "failed queries: %v", res.FirstErrors)
	assert.GreaterOrEqual(t, seen.count(), 3, "leases were replaced (max TTL) and re-read (revocation)")
}

// TestRotationSoakVaultStaticRole is issue 13's soak for Vault static roles:
// Vault rotates the role's password every 5 s (its rotation_period) while
// a steady load runs; every query must succeed.
func TestRotationSoakVaultStaticRole(t *testing.T) {
	e := startVault(t).withPostgres(t)
	e.pg.CreateRole(t, "static_soak", "initial-"+randomSuffix(t))
	_, err := e.root.Logical().Write("database/static-roles/static_soak", map[string]any{
		"db_name": "pg", "username": "static_soak", "rotation_period": "5s",
	})
	require.NoError(t, err)
	src, err := vaultsrc.StaticRole(e.client(t), "database", "static_soak")
	require.NoError(t, err)
	pool, coldStart := e.soakPool(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen versions
	seen.watch(ctx, src)

	res := soak.Run(ctx, pool, 4, 10*time.Millisecond, func() {
		poll(40*time.Second, 100*time.Millisecond, func() bool { return seen.count() >= 4 }) // three rotations
	})
	t.Logf("SOAK vault static role (rotation_period 5 s): %s; cold start (Build) %s; passwords used %d",
		res, coldStart.Round(time.Millisecond), seen.count())
	assert.Zero(t, res.Failed, "failed queries: %v", res.FirstErrors)
	assert.GreaterOrEqual(t, seen.count(), 4, "Vault rotated the password at least three times during the load")
}
