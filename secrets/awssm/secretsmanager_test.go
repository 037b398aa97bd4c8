package awssm

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/awstest"
	"github.com/pgsecure/pgsecure/secrets"
)

func TestSecretsManagerRDSJSON(t *testing.T) {
	srv, cfg := newServer(t)
	c := mustFetch(t, SecretsManager(cfg, "prod/db"))
	assert.Equal(t, "app", c.User)
	assert.Equal(t, testPassword, c.Password.Reveal())
	assert.Equal(t, "db.internal", c.Host)
	assert.EqualValues(t, 6543, c.Port)
	assert.Equal(t, "orders", c.Database)
	assert.Equal(t, "v1", c.Version)
	assert.Equal(t, "awssm:prod/db", c.Source)
	assert.True(t, c.Expires.IsZero(), "a stored secret does not expire on its own")
	assert.Equal(t, []awstest.Request{{SecretID: "prod/db", VersionStage: StageCurrent}}, srv.Requests())
}

func TestSecretsManagerByARN(t *testing.T) {
	srv, cfg := newServer(t)
	c := mustFetch(t, SecretsManager(cfg, srv.ARN("prod/db")))
	assert.Equal(t, testPassword, c.Password.Reveal())
	assert.Equal(t, "awssm:"+srv.ARN("prod/db"), c.Source)
}

func TestSecretsManagerPlainString(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Put("plain", awstest.Version{ID: "p1", Stages: []string{StageCurrent}, String: "just-a-password"})

	c := mustFetch(t, SecretsManager(cfg, "plain", WithUser("reporter")))
	assert.Equal(t, "reporter", c.User)
	assert.Equal(t, "just-a-password", c.Password.Reveal())
	assert.Equal(t, "p1", c.Version)

	_, err := fetch(t, SecretsManager(cfg, "plain"))
	require.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Contains(t, err.Error(), "plain string")
	assert.Contains(t, err.Error(), "WithUser")
}

func TestSecretsManagerBinaryJSON(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Put("bin", awstest.Version{ID: "b1", Stages: []string{StageCurrent}, Binary: []byte(rdsJSON(testPassword))})
	c := mustFetch(t, SecretsManager(cfg, "bin"))
	assert.Equal(t, "app", c.User)
	assert.Equal(t, testPassword, c.Password.Reveal())
}

func TestSecretsManagerJSONNeedsItsOwnUser(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Put("nouser", awstest.Version{ID: "n1", Stages: []string{StageCurrent}, String: `{"password":"x"}`})
	_, err := fetch(t, SecretsManager(cfg, "nouser", WithUser("fallback")))
	require.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Contains(t, err.Error(), `"username"`)
	assert.Contains(t, err.Error(), "awssm:nouser")
}

func TestSecretsManagerStages(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StagePending}, String: rdsJSON(testPending)})

	cur := mustFetch(t, SecretsManager(cfg, "prod/db"))
	assert.Equal(t, "v1", cur.Version)
	assert.Equal(t, testPassword, cur.Password.Reveal())

	pend := mustFetch(t, SecretsManager(cfg, "prod/db", WithVersionStage(StagePending)))
	assert.Equal(t, "v2", pend.Version)
	assert.Equal(t, testPending, pend.Password.Reveal())

	pinned := mustFetch(t, SecretsManager(cfg, "prod/db", WithVersionID("v2")))
	assert.Equal(t, "v2", pinned.Version)

	assert.Equal(t, []awstest.Request{
		{SecretID: "prod/db", VersionStage: StageCurrent},
		{SecretID: "prod/db", VersionStage: StagePending},
		{SecretID: "prod/db", VersionID: "v2"}, // a pinned version sends no stage
	}, srv.Requests())
}

func TestSecretsManagerRotation(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StagePending}, String: rdsJSON(testPending)})
	src := SecretsManager(cfg, "prod/db")
	assert.True(t, src.Rotates())

	old := mustFetch(t, src)
	require.Equal(t, "v1", old.Version)

	src.Invalidate(old) // the database rejected AWSCURRENT: rotation window
	next := mustFetch(t, src)
	assert.Equal(t, "v2", next.Version)
	assert.Equal(t, testPending, next.Password.Reveal())

	again := mustFetch(t, src)
	assert.Equal(t, "v2", again.Version, "the accepted pending version is kept while AWSCURRENT has not moved")

	src.Invalidate(next) // the pending credentials were rejected too: back to AWSCURRENT, no loop
	assert.Equal(t, "v1", mustFetch(t, src).Version)
	assert.Equal(t, "v1", mustFetch(t, src).Version)

	cur, pend, byID := awstest.Request{SecretID: "prod/db", VersionStage: StageCurrent},
		awstest.Request{SecretID: "prod/db", VersionStage: StagePending}, awstest.Request{SecretID: "prod/db", VersionID: "v2"}
	assert.Equal(t, []awstest.Request{cur, pend, cur, byID, pend, cur, cur}, srv.Requests())
}

// TestSecretsManagerRotationFinishes: once the rotation moves AWSCURRENT to
// the pending version, the source reads AWSCURRENT alone again.
func TestSecretsManagerRotationFinishes(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StagePending}, String: rdsJSON(testPending)})
	src := SecretsManager(cfg, "prod/db")
	src.Invalidate(mustFetch(t, src))
	require.Equal(t, "v2", mustFetch(t, src).Version)
	srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StageCurrent}, String: rdsJSON(testPending)})
	n := len(srv.Requests())
	assert.Equal(t, "v2", mustFetch(t, src).Version)
	assert.Equal(t, "v2", mustFetch(t, src).Version)
	assert.Len(t, srv.Requests(), n+2, "one request per fetch after the rotation finished")
}

// TestSecretsManagerBacksOffAcrossTheRotationWindow is issue 13 item 6: when
// the database rejected AWSCURRENT and the rotation has not yet published a
// usable version (no AWSPENDING), the fetch reads again with jittered
// backoff instead of handing back the rejected credentials at once.
func TestSecretsManagerBacksOffAcrossTheRotationWindow(t *testing.T) {
	srv, cfg := newServer(t)
	src := SecretsManager(cfg, "prod/db")
	src.impl.(*smSource).jitter = func() float64 { return 0 }
	old := mustFetch(t, src)
	src.Invalidate(old)
	go func() {
		// The rotation publishes the new version while the source backs off.
		for len(srv.Requests()) < 3 { // AWSCURRENT, then AWSPENDING (absent) and AWSCURRENT after the rejection
			time.Sleep(time.Millisecond)
		}
		srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StageCurrent}, String: rdsJSON(testPending)})
	}()
	c := mustFetch(t, src)
	assert.Equal(t, "v2", c.Version, "the fetch waited for the rotation to publish")
	assert.Equal(t, testPending, c.Password.Reveal())
	assert.GreaterOrEqual(t, len(srv.Requests()), 5, "it read again after backing off")
}

// TestSecretsManagerRotationBackoffIsBounded: a rotation that never publishes
// leaves the source handing back what AWSCURRENT holds after rotationTries
// reads, or when the caller's deadline comes first.
func TestSecretsManagerRotationBackoffIsBounded(t *testing.T) {
	srv, cfg := newServer(t)
	src := SecretsManager(cfg, "prod/db")
	src.impl.(*smSource).jitter = func() float64 { return 0.999 } // the first wait is about 100 ms
	old := mustFetch(t, src)
	src.Invalidate(old)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		for len(srv.Requests()) < 3 { // AWSCURRENT, then AWSPENDING (absent) and AWSCURRENT
			time.Sleep(time.Millisecond)
		}
		time.Sleep(30 * time.Millisecond) // the third answer arrives; the source waits
		cancel()                          // the caller's deadline, while the source waits
	}()
	c, err := src.Credentials(ctx)
	require.NoError(t, err, "the database decides about the credentials")
	assert.Equal(t, "v1", c.Version)
	assert.Len(t, srv.Requests(), 3, "no reads after the deadline")
}

func TestSecretsManagerRotationWithoutPendingVersion(t *testing.T) {
	srv, cfg := newServer(t)
	src := SecretsManager(cfg, "prod/db")
	src.Invalidate(secrets.Credentials{Version: "v0"})
	c := mustFetch(t, src)
	assert.Equal(t, "v1", c.Version)
	assert.Equal(t, []string{StagePending, StageCurrent}, stages(srv))
}

func TestSecretsManagerPinnedSourceIgnoresInvalidate(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StagePending}, String: rdsJSON(testPending)})
	for _, src := range []*Source{
		SecretsManager(cfg, "prod/db", WithVersionID("v1")),
		SecretsManager(cfg, "prod/db", WithVersionStage(StagePending)),
	} {
		first := mustFetch(t, src)
		src.Invalidate(first)
		assert.Equal(t, first.Version, mustFetch(t, src).Version, src.Name())
	}
	pinned, pending := awstest.Request{SecretID: "prod/db", VersionID: "v1"}, awstest.Request{SecretID: "prod/db", VersionStage: StagePending}
	assert.Equal(t, []awstest.Request{pinned, pinned, pending, pending}, srv.Requests())
}

func TestSecretsManagerConcurrentUse(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StagePending}, String: rdsJSON(testPending)})
	src := SecretsManager(cfg, "prod/db")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 8 {
		wg.Go(func() {
			for range 2 {
				c, err := fetch(t, src)
				if err != nil {
					errs <- err
					return
				}
				src.Invalidate(c)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.GreaterOrEqual(t, len(srv.Requests()), 16, "every fetch reached AWS")
}

func TestSecretsManagerRotationThroughCache(t *testing.T) {
	srv, cfg := newServer(t)
	srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StagePending}, String: rdsJSON(testPending)})
	cache := secrets.NewCache(SecretsManager(cfg, "prod/db"), secrets.CacheOptions{})

	old := mustFetch(t, cache)
	assert.Equal(t, "v1", mustFetch(t, cache).Version, "cached")
	cache.Invalidate(old) // the cache forwards the rejection to the source
	assert.Equal(t, "v2", mustFetch(t, cache).Version)
	assert.Equal(t, []string{StageCurrent, StagePending}, stages(srv))
	assert.True(t, cache.Rotates(), "the cache forwards Rotates")
}

// TestSecretsManagerSecondRotation: the version accepted from AWSPENDING in
// one rotation becomes AWSCURRENT; when the next rotation's password is set,
// its rejection leads straight to the new AWSPENDING, without backing off.
func TestSecretsManagerSecondRotation(t *testing.T) {
	srv, cfg := newServer(t)
	src := SecretsManager(cfg, "prod/db")
	src.Invalidate(mustFetch(t, src))
	srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StagePending}, String: rdsJSON(testPending)})
	v2 := mustFetch(t, src)
	require.Equal(t, "v2", v2.Version)
	srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StageCurrent}, String: rdsJSON(testPending)}) // finishSecret

	srv.Put("prod/db", awstest.Version{ID: "v3", Stages: []string{StagePending}, String: rdsJSON("third-pw")}) // next rotation
	src.Invalidate(v2)
	n := len(srv.Requests())
	assert.Equal(t, "v3", mustFetch(t, src).Version)
	assert.Len(t, srv.Requests(), n+1, "one read of AWSPENDING, no backoff")
}

// TestSecretsManagerPrevious: a source following AWSCURRENT offers the
// AWSPREVIOUS version (pgsecure logs in with it while the database has not
// caught up with a rotation); a pinned source, or a secret without a
// previous version, has none (ErrNotFound).
func TestSecretsManagerPrevious(t *testing.T) {
	srv, cfg := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := SecretsManager(cfg, "prod/db")
	_, err := src.Previous(ctx)
	require.ErrorIs(t, err, secrets.ErrNotFound, "no rotation yet")

	srv.Put("prod/db", awstest.Version{ID: "v1", Stages: []string{StagePrevious}, String: rdsJSON(testPassword)})
	srv.Put("prod/db", awstest.Version{ID: "v2", Stages: []string{StageCurrent}, String: rdsJSON(testPending)})
	prev, err := src.Previous(ctx)
	require.NoError(t, err)
	assert.Equal(t, "v1", prev.Version)
	assert.Equal(t, testPassword, prev.Password.Reveal())
	assert.Equal(t, "v2", mustFetch(t, src).Version)

	_, err = SecretsManager(cfg, "prod/db", WithVersionID("v2")).Previous(ctx)
	assert.ErrorIs(t, err, secrets.ErrNotFound, "a pinned source does not follow rotation")
	assert.Contains(t, srv.Requests(), awstest.Request{SecretID: "prod/db", VersionStage: StagePrevious})
}
