package vaultit

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/secrets"
	vaultsrc "github.com/pgsecure/pgsecure/secrets/vault"
)

func TestDatabaseCredsAreRealRoles(t *testing.T) {
	e := startVault(t).withPostgres(t)
	e.dynamicRole(t, "app", "1h", "2h")
	ctx := context.Background()
	c := e.client(t)

	src, err := vaultsrc.Database(c, "database", "app")
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Close(ctx) })
	first, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(first.Version, "database/creds/app/"), "Version is the lease ID: %s", first.Version)
	assert.WithinDuration(t, time.Now().Add(time.Hour), first.Expires, time.Minute, "a dynamic role ends with its lease: the pool retires connections before it")
	assert.Equal(t, e.name("database/creds/app"), first.Source)
	user, err := e.login(ctx, first)
	require.NoError(t, err)
	assert.Equal(t, first.User, user)

	again, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.Equal(t, first.Version, again.Version, "the lease is reused while valid")

	src.Invalidate(first)
	second, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, first.Version, second.Version)
	assert.NotEqual(t, first.User, second.User, "after Invalidate a new role is issued")
	user, err = e.login(ctx, second)
	require.NoError(t, err)
	assert.Equal(t, second.User, user)

	other, err := vaultsrc.Database(c, "database", "app")
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close(ctx) })
	third, err := other.Credentials(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, second.User, third.User, "each source holds its own lease")
}

func TestDatabaseConcurrentCallersShareOneLease(t *testing.T) {
	e := startVault(t).withPostgres(t)
	src := e.source(t, "app", "1h", "2h")

	const n = 16
	versions := make(chan string, n)
	for range n {
		go func() {
			creds, err := src.Credentials(context.Background())
			assert.NoError(t, err)
			versions <- creds.Version
		}()
	}
	seen := map[string]bool{}
	for range n {
		seen[<-versions] = true
	}
	assert.Len(t, seen, 1, "concurrent first calls must share one Vault read")
	leases, err := e.root.Logical().List("sys/leases/lookup/database/creds/app")
	require.NoError(t, err)
	assert.Len(t, leases.Data["keys"], 1, "exactly one lease was issued")
}

func TestDatabaseLeaseIsRenewedAtTwoThirds(t *testing.T) {
	e := startVault(t).withPostgres(t)
	ctx := context.Background()
	src := e.source(t, "short", "15s", "1m")

	issued := time.Now()
	creds, err := src.Credentials(ctx)
	require.NoError(t, err)

	renewed := poll(14*time.Second, 50*time.Millisecond, func() bool {
		l, err := e.root.Sys().Lookup(creds.Version)
		require.NoError(t, err)
		return l.Data["last_renewal"] != nil
	})
	renewedAfter := time.Since(issued)
	require.True(t, renewed, "the lease was never renewed")
	// The advisory point of the timing model (package secrets): 2/3 of 15 s
	// less up to a tenth of jitter, i.e. 8.5 s .. 10 s, before the mandatory
	// point 11 s (15 s less the 4 s minimum margin).
	assert.Greater(t, renewedAfter, 8*time.Second, "renewed too early")
	assert.Less(t, renewedAfter, 11*time.Second, "renewed too late")

	// Past the first TTL the same role still logs in: the renewal also
	// moved the role's VALID UNTIL.
	time.Sleep(time.Until(issued.Add(15500 * time.Millisecond)))
	again, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.Equal(t, creds.Version, again.Version)
	assert.True(t, again.Expires.After(creds.Expires), "Expires follows the renewal")
	_, err = e.login(ctx, again)
	require.NoError(t, err)
}

func TestDatabaseMaxTTLLeadsToNewCreds(t *testing.T) {
	e := startVault(t).withPostgres(t)
	ctx := context.Background()
	src := e.source(t, "capped", "2s", "4s")

	issued := time.Now()
	first, err := src.Credentials(ctx)
	require.NoError(t, err)
	var next secrets.Credentials
	poll(8*time.Second, 100*time.Millisecond, func() bool {
		next, err = src.Credentials(ctx)
		require.NoError(t, err)
		return next.Version != first.Version
	})
	require.NotEqual(t, first.Version, next.Version, "new credentials were never read")
	assert.Less(t, time.Since(issued), 4*time.Second, "new credentials must come before the max TTL ends")
	assert.NotEqual(t, first.User, next.User)
	_, err = e.login(ctx, next)
	require.NoError(t, err)
}

func TestDatabaseRevokedLeaseIsRejected(t *testing.T) {
	e := startVault(t).withPostgres(t)
	ctx := context.Background()
	src := e.source(t, "app", "1h", "2h")

	creds, err := src.Credentials(ctx)
	require.NoError(t, err)
	_, err = e.login(ctx, creds)
	require.NoError(t, err)

	require.NoError(t, e.root.Sys().Revoke(creds.Version))
	_, err = e.login(ctx, creds)
	requireRejected(t, err)

	src.Invalidate(creds)
	fresh, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, creds.Version, fresh.Version)
	_, err = e.login(ctx, fresh)
	require.NoError(t, err)
}

// sourceGoroutines counts goroutines running code of the vault source
// package (its lease watchers).
func sourceGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "pgsecure/pgsecure/secrets/vault.") {
			n++
		}
	}
	return n
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	var got int
	if poll(2*time.Second, 10*time.Millisecond, func() bool { got = sourceGoroutines(); return got == want }) {
		return
	}
	t.Fatalf("%d goroutines of the vault source package, want %d", got, want)
}

func TestCloseStopsWatchersAndRevokes(t *testing.T) {
	e := startVault(t).withPostgres(t)
	e.dynamicRole(t, "app", "1h", "2h")
	ctx := context.Background()
	c := e.client(t)
	require.Zero(t, sourceGoroutines())

	src, err := vaultsrc.Database(c, "database", "app", vaultsrc.WithRevokeOnClose())
	require.NoError(t, err)
	creds, err := src.Credentials(ctx)
	require.NoError(t, err)
	src.Invalidate(creds)
	creds, err = src.Credentials(ctx)
	require.NoError(t, err)
	waitGoroutines(t, 1) // one watcher: the invalidated lease's watcher stopped

	require.NoError(t, src.Close(ctx))
	waitGoroutines(t, 0)
	_, err = e.login(ctx, creds)
	requireRejected(t, err)
	_, err = e.root.Sys().Lookup(creds.Version)
	require.Error(t, err, "the lease is gone from Vault")

	_, err = src.Credentials(ctx)
	require.ErrorIs(t, err, vaultsrc.ErrClosed)

	// Without WithRevokeOnClose the role outlives the source.
	kept, err := vaultsrc.Database(c, "database", "app")
	require.NoError(t, err)
	creds, err = kept.Credentials(ctx)
	require.NoError(t, err)
	require.NoError(t, kept.Close(ctx))
	waitGoroutines(t, 0)
	_, err = e.login(ctx, creds)
	require.NoError(t, err)
}

func TestStaticRole(t *testing.T) {
	e := startVault(t).withPostgres(t)
	ctx := context.Background()
	e.staticRole(t, "static_app", "1h")

	src, err := vaultsrc.StaticRole(e.client(t), "database", "static_app")
	require.NoError(t, err)
	first, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.Equal(t, "static_app", first.User)
	assert.NotEmpty(t, first.Version, "Version is the last rotation time")
	assert.True(t, first.Expires.IsZero(), "sessions outlive a rotation: the pool need not retire them")
	user, err := e.login(ctx, first)
	require.NoError(t, err)
	assert.Equal(t, "static_app", user)

	_, err = e.root.Logical().Write("database/rotate-role/static_app", nil)
	require.NoError(t, err)
	second, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, first.Version, second.Version)
	assert.NotEqual(t, first.Password.Reveal(), second.Password.Reveal())
	_, err = e.login(ctx, first)
	requireRejected(t, err)
	_, err = e.login(ctx, second)
	require.NoError(t, err)

	// A rejection of the current password makes the next read wait for a
	// rotation, within the caller's deadline; none comes here.
	src.Invalidate(second)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	again, err := src.Credentials(short)
	require.NoError(t, err)
	assert.Equal(t, second.Version, again.Version)

	missing, err := vaultsrc.StaticRole(e.client(t), "database", "nope")
	require.NoError(t, err)
	_, err = missing.Credentials(ctx)
	require.ErrorIs(t, err, secrets.ErrNotFound)
}
