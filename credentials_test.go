package pgsecure_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rotatingSource is a test double for a secret store: it returns the
// password at index min(calls, len-1) and can be made to fail. Real stores
// are tested in secrets/..., this one lets the test decide what each fetch
// returns.
type rotatingSource struct {
	passwords []string
	calls     atomic.Int32
	down      atomic.Bool
	expires   time.Duration
}

func (s *rotatingSource) Credentials(context.Context) (secrets.Credentials, error) {
	if s.down.Load() {
		return secrets.Credentials{}, fmt.Errorf("test store: %w", secrets.ErrUnavailable)
	}
	i := int(s.calls.Add(1)) - 1
	if i >= len(s.passwords) {
		i = len(s.passwords) - 1
	}
	c := secrets.Credentials{User: appUser, Password: secrets.NewSecret(s.passwords[i]), Version: fmt.Sprint(i), Source: "test-store"}
	if s.expires > 0 {
		c.Expires = time.Now().Add(s.expires)
	}
	return c, nil
}

func (s *rotatingSource) Name() string { return "test-store" }

// TestCredentialsFromSource: the password comes from the source, not the
// connection string.
func TestCredentialsFromSource(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	src := &rotatingSource{passwords: []string{appPassword}, expires: time.Hour}
	var events []pgsecure.EventKind
	cfg, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://nobody@localhost:%d/postgres", pg.Port)).
		RootCAFile(pki.CAFile).Credentials(src).OnEvent(func(_ context.Context, e pgsecure.Event) { events = append(events, e.Kind()) }).Config(ctx)
	require.NoError(t, err)
	assert.Equal(t, time.Hour, cfg.MaxConnLifetime, "expiring credentials no longer shorten every connection's lifetime (each connection is retired before its own credentials expire)")
	pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://nobody@localhost:%d/postgres", pg.Port)).
		RootCAFile(pki.CAFile).Credentials(src).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	var user string
	require.NoError(t, pool.QueryRow(ctx, "SELECT current_user").Scan(&user))
	assert.Equal(t, appUser, user)
	assert.Contains(t, events, pgsecure.EventSecretFetched)
}

// TestRotatedPasswordInvalidatesAndRetries: the source first hands out a
// stale password; the server's 28P01 invalidates it and Build's retry uses
// the fresh one.
func TestRotatedPasswordInvalidatesAndRetries(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	src := &rotatingSource{passwords: []string{"stale-password", appPassword}}
	// connect_timeout=2: the failing connect at the end re-logs in until it
	// runs out; the default 10 s would only make the test slower.
	pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres?connect_timeout=2", pg.Port)).
		RootCAFile(pki.CAFile).Credentials(src).CredentialCache(secrets.CacheOptions{TTL: time.Hour}).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	assert.GreaterOrEqual(t, src.calls.Load(), int32(2))

	// Rotate in PostgreSQL and in the store: the next new connection meets
	// 28P01 with the cached password, invalidates it and retries once with
	// the rotated one, within the same Acquire.
	src.passwords = append(src.passwords, "rotated-Password-2")
	pg.Exec(t, "ALTER ROLE "+appUser+" PASSWORD 'rotated-Password-2'")
	pool.Reset()
	calls := src.calls.Load()
	require.NoError(t, pool.Ping(ctx), "the connection retried with the rotated password")
	assert.Equal(t, calls+1, src.calls.Load(), "exactly one fresh fetch")

	// A password the store does not know either: one failure, no loop.
	pg.Exec(t, "ALTER ROLE "+appUser+" PASSWORD 'unknown-to-the-store'")
	pool.Reset()
	err = pool.Ping(ctx)
	require.Error(t, err)
	assert.True(t, isSQLState(err, "28P01"), "the server's rejection is reported: %v", err)
	assert.NotContains(t, err.Error(), "rotated-Password-2")
}

func isSQLState(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// TestSourceDownAtStartup: Build fails with an error naming the source.
func TestSourceDownAtStartup(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	src := &rotatingSource{passwords: []string{appPassword}}
	src.down.Store(true)
	_, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port)).
		RootCAFile(pki.CAFile).Credentials(src).Build(ctxT(t))
	require.Error(t, err)
	assert.True(t, errors.Is(err, secrets.ErrUnavailable))
	assert.Contains(t, err.Error(), "test-store")
}

// TestSourceDownMidLife: existing and new connections keep working on
// cached credentials while the source is down.
func TestSourceDownMidLife(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	src := &rotatingSource{passwords: []string{appPassword}, expires: time.Hour}
	pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port)).
		RootCAFile(pki.CAFile).Credentials(src).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	src.down.Store(true)
	pool.Reset()
	require.NoError(t, pool.Ping(ctx), "a new connection uses the cached, unexpired credentials")
}

// TestHostFromSource: a source that names the server (the RDS secret shape)
// needs no host in the connection string.
func TestHostFromSource(t *testing.T) {
	pg, pki := server(t, testutil.LocalServerOptions())
	t.Setenv("PGHOST", "")
	t.Setenv("PGPORT", "")
	src := secrets.Static(secrets.Credentials{User: appUser, Password: secrets.NewSecret(appPassword), Host: "localhost", Port: uint16(pg.Port), Database: "postgres"})
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder("").RootCAFile(pki.CAFile).Credentials(src).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	ssl, _ := serverSaysSSL(t, ctx, pool)
	assert.True(t, ssl)
}
