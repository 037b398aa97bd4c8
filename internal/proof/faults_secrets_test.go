package proof

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/refresh"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// backend is a secret source whose availability and content the test
// controls. It is a stand-in for a secret manager, not for PostgreSQL (which
// is real in these tests): what matters here is how pgsecure reacts when the
// backend fails or rotates, whatever the backend.
type backend struct {
	mu       sync.Mutex
	creds    secrets.Credentials
	down     bool
	fetches  int
	lifetime time.Duration // 0: credentials do not expire
	clock    *testutil.Clock
}

func (b *backend) Name() string { return "test-backend" }

func (b *backend) Credentials(context.Context) (secrets.Credentials, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fetches++
	if b.down {
		return secrets.Credentials{}, fmt.Errorf("pgsecure/proof: test-backend: connection refused: %w", secrets.ErrUnavailable)
	}
	c := b.creds
	if b.lifetime > 0 {
		c.Expires = b.clock.Now().Add(b.lifetime)
	}
	return c, nil
}

func (b *backend) set(fn func(*backend)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn(b)
}

func (b *backend) fetchCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fetches
}

func newBackend(password, version string, lifetime time.Duration) (*backend, *testutil.Clock) {
	clock := testutil.NewClock(time.Now())
	return &backend{
		creds:    secrets.Credentials{User: appUser, Password: secrets.NewSecret(password), Version: version},
		lifetime: lifetime, clock: clock,
	}, clock
}

// credsBuilder is a pgsecure builder for pg whose credentials come from src
// through a cache on clock. The connection string has no password.
func credsBuilder(pki *testutil.PKI, port int, src secrets.Source, clock *testutil.Clock) *pgsecure.Builder {
	return pgsecure.NewBuilder(fmt.Sprintf("postgres://%s@localhost:%d/postgres", appUser, port)).
		RootCAFile(pki.CAFile).Logger(quiet).MaxConns(2).
		Credentials(src).CredentialCache(cacheOn(clock, time.Minute))
}

// cacheOn returns cache options with ttl whose clock is clock (and whose
// jitter draws 0), through the module's test hook.
func cacheOn(clock *testutil.Clock, ttl time.Duration) secrets.CacheOptions {
	o := secrets.CacheOptions{TTL: ttl}
	refresh.SetCacheClock(&o, clock.Now)
	return o
}

// TestFaultSecretUnreachableAtStartup: Build fails, clearly, without
// dialling the database.
func TestFaultSecretUnreachableAtStartup(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	tap := testutil.WireTap(t, pg.Addr())
	src, clock := newBackend(appPassword, "v1", 0)
	src.down = true
	_, err := credsBuilder(pki, tap.Port, src, clock).Build(ctxT(t, 30*time.Second))
	require.ErrorIs(t, err, secrets.ErrUnavailable)
	assert.Contains(t, err.Error(), "test-backend", "the error names the source")
	assert.NotContains(t, err.Error(), appPassword)
	assert.Zero(t, tap.Conns(), "no connection without credentials")
}

// TestFaultSecretOutageMidLife: once running, a backend outage does not
// stop new connections while the cached credentials are unexpired; after
// they expire new connections fail with ErrExpired while open ones keep
// working; when the backend returns, new connections work again.
func TestFaultSecretOutageMidLife(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	src, clock := newBackend(appPassword, "lease-1", time.Hour)
	ctx := ctxT(t, time.Minute)
	pool, err := credsBuilder(pki, pg.Port, src, clock).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	held, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer held.Release()

	src.set(func(b *backend) { b.down = true })
	clock.Advance(56 * time.Minute) // in the mandatory window (the last tenth), before expiry
	before := src.fetchCount()
	fresh, err := pool.Acquire(ctx) // held is busy: a new connection
	require.NoError(t, err, "unexpired cached credentials keep serving while the backend is down")
	fresh.Release()
	assert.Greater(t, src.fetchCount(), before, "a refresh was attempted")

	clock.Advance(5 * time.Minute) // past expiry
	pool.Reset()                   // the next acquire must dial
	_, err = pool.Acquire(ctx)
	require.ErrorIs(t, err, secrets.ErrExpired)
	assert.ErrorIs(t, err, secrets.ErrUnavailable, "the backend's failure is reachable")
	assert.NotContains(t, err.Error(), appPassword)
	var n int
	require.NoError(t, held.QueryRow(ctx, "SELECT 1").Scan(&n), "the open connection keeps working")

	src.set(func(b *backend) { b.down = false })
	c, err := pool.Acquire(ctx)
	require.NoError(t, err, "the backend is back")
	c.Release()
}

// TestFaultPasswordRotated: after the database password and the secret are
// rotated, new connections use the new password — right away once the
// cached copy is due, or, when the cached copy is rejected (SQLSTATE 28P01),
// by retrying once with fresh credentials within the same Acquire.
func TestFaultPasswordRotated(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	src, clock := newBackend(appPassword, "v1", 0)
	ctx := ctxT(t, time.Minute)
	pool, err := credsBuilder(pki, pg.Port, src, clock).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	rotate := func(pw, version string) {
		pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, pw))
		src.set(func(b *backend) { b.creds.Password, b.creds.Version = secrets.NewSecret(pw), version })
		pool.Reset()
	}

	t.Run("cached copy due", func(t *testing.T) {
		rotate("Rotated-Once-7f3a91", "v2")
		clock.Advance(2 * time.Minute) // past the cache TTL
		c, err := pool.Acquire(ctx)
		require.NoError(t, err, "the next connection uses the new password (refreshed in the background, "+
			"or fetched again after the server rejected the cached one)")
		c.Release()
	})

	t.Run("cached copy rejected", func(t *testing.T) {
		const pw = "Rotated-Twice-c40e22"
		rotate(pw, "v3")
		fails := 0
		for range 3 {
			c, err := pool.Acquire(ctx)
			if err == nil {
				c.Release()
				break
			}
			fails++
			var pgErr *pgconn.PgError
			require.True(t, errors.As(err, &pgErr), "only the server's rejection may fail: %v", err)
			assert.Equal(t, "28P01", pgErr.Code)
			for _, secret := range []string{appPassword, "Rotated-Once-7f3a91", pw} {
				assert.NotContains(t, err.Error(), secret)
			}
		}
		assert.Zero(t, fails, "the rejection was retried with the fresh password inside the Acquire")
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		c.Release()
	})
}
