package proof

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rotationRig is a server behind a counting relay (the fault proxy with no
// fault: every TCP connection pgsecure opens is one login attempt) and a
// file secret (a Kubernetes-style mount) for appUser.
type rotationRig struct {
	pki    *testutil.PKI
	pg     *testutil.Postgres
	proxy  *faultProxy
	secret *testutil.KubeSecret
}

func newRotationRig(t *testing.T) *rotationRig {
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	return &rotationRig{pki: pki, pg: pg, proxy: newFaultProxy(t, pg.Addr()),
		secret: testutil.NewKubeSecret(t, map[string]string{"username": appUser, "password": appPassword + "\n"})}
}

func (r *rotationRig) builder(extra string) *pgsecure.Builder {
	return pgsecure.NewBuilder(fmt.Sprintf("postgres://%s@localhost:%d/postgres?%s", appUser, r.proxy.Port, extra)).
		RootCAFile(r.pki.CAFile).Logger(quiet).Credentials(secrets.File(r.secret.Dir))
}

func (r *rotationRig) alterRole(t *testing.T, pw string) {
	r.pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, pw))
}

func (r *rotationRig) writeSecret(t *testing.T, pw string) {
	r.secret.Update(t, map[string]string{"username": appUser, "password": pw + "\n"})
}

// waitConns waits (bounded) until the relay has accepted at least n
// connections, and reports whether it did.
func (r *rotationRig) waitConns(n int, within time.Duration) bool {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if r.proxy.Conns() >= n {
			return true
		}
	}
	return false
}

// maxLogins bounds the logins one connect may make while it waits for the
// database and the secret to agree: backoff, not a busy loop.
const maxLogins = 20

// TestRotationSecretFirstNewProcess is issue 24's second finding, secret
// first, for a process that never saw the old password: the new password is
// written to the file source, then a pool is built (its startup connect is
// rejected: the database still has the old one), then ALTER ROLE. The
// connect that started before ALTER ROLE logs in again with backoff and
// succeeds once the database accepts the new password.
func TestRotationSecretFirstNewProcess(t *testing.T) {
	t.Parallel()
	r := newRotationRig(t)
	const pw = "Rotated-SecretFirst-9d1c44"
	r.writeSecret(t, pw)

	ctx := ctxT(t, time.Minute)
	type result struct {
		pool *pgxpool.Pool
		err  error
	}
	done := make(chan result, 1)
	go func() {
		p, err := r.builder("connect_timeout=20").Build(ctx)
		done <- result{p, err}
	}()
	retried := r.waitConns(2, 10*time.Second) // rejected once, and logging in again
	connsAtAlter := r.proxy.Conns()
	r.alterRole(t, pw)
	res := <-done
	require.NoError(t, res.err, "the connect that started before ALTER ROLE succeeds once the database accepts the secret")
	defer res.pool.Close()
	assert.True(t, retried, "the rejected login was tried again while the database still had the old password")
	assert.GreaterOrEqual(t, connsAtAlter, 2, "ALTER ROLE ran after the first rejection")
	assert.LessOrEqual(t, r.proxy.Conns(), maxLogins, "logins are spaced by backoff")
	var one int
	require.NoError(t, res.pool.QueryRow(ctx, "SELECT 1").Scan(&one))
}

// TestRotationSecretFirstRunningPool: secret first, in a pool that logged in
// with the old password before. A new connection made between the secret
// update and ALTER ROLE is rejected with the new password and succeeds
// with the previous one (the database still accepts it); after ALTER ROLE
// new connections use the new one.
func TestRotationSecretFirstRunningPool(t *testing.T) {
	t.Parallel()
	r := newRotationRig(t)
	ctx := ctxT(t, time.Minute)
	pool, err := r.builder("connect_timeout=20").Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	const pw = "Rotated-SecretFirst-2b8e70"
	r.writeSecret(t, pw)
	pool.Reset()
	before := r.proxy.Conns()
	c, err := pool.Acquire(ctx)
	require.NoError(t, err, "a connection made before ALTER ROLE succeeds with the previous credentials")
	c.Release()
	// The rejected login, a probe with the previous password, pgx's retry
	// with it; one more at most for the pool's own housekeeping.
	assert.LessOrEqual(t, r.proxy.Conns()-before, 4, "rejected once, then logged in with the previous password")

	r.alterRole(t, pw)
	pool.Reset()
	c, err = pool.Acquire(ctx)
	require.NoError(t, err, "after ALTER ROLE new connections use the new password")
	c.Release()
}

// TestRotationDatabaseFirst: ALTER ROLE first, then a connect (rejected:
// the secret still holds the old password), then the secret is written.
// The connect that started before the secret update succeeds once it is
// written.
func TestRotationDatabaseFirst(t *testing.T) {
	t.Parallel()
	r := newRotationRig(t)
	ctx := ctxT(t, time.Minute)
	pool, err := r.builder("connect_timeout=20").Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	const pw = "Rotated-DatabaseFirst-51f0aa"
	r.alterRole(t, pw)
	pool.Reset()
	before := r.proxy.Conns()
	done := make(chan error, 1)
	go func() {
		c, err := pool.Acquire(ctx)
		if err == nil {
			c.Release()
		}
		done <- err
	}()
	rejected := r.waitConns(before+1, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // the rejection is being handled
	r.writeSecret(t, pw)
	require.NoError(t, <-done, "the connect that started before the secret update succeeds with the new secret")
	assert.True(t, rejected)
	assert.LessOrEqual(t, r.proxy.Conns()-before, maxLogins, "logins are spaced by backoff")
}

// TestRotationRejectedUntilTimeout: when the database never accepts what
// the source holds, the connect ends when connect_timeout does, with an
// error that names the source, says the credentials were rejected, wraps
// ErrCredentialsRejected and the server's 28P01, and contains no password.
func TestRotationRejectedUntilTimeout(t *testing.T) {
	t.Parallel()
	r := newRotationRig(t)
	const pw = "Never-Accepted-0c7d19"
	r.writeSecret(t, pw)
	ctx := ctxT(t, time.Minute)
	_, err := r.builder("connect_timeout=2").Build(ctx)
	require.Error(t, err)
	t.Logf("error: %v", err)
	assert.ErrorIs(t, err, pgsecure.ErrCredentialsRejected)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "the server's error is reachable: %v", err)
	assert.Equal(t, "28P01", pgErr.Code)
	assert.Contains(t, err.Error(), "file:"+r.secret.Dir, "the error names the source")
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "a rejection, not a timeout")
	for _, secret := range []string{pw, appPassword} {
		assert.NotContains(t, err.Error(), secret)
	}
	assert.Greater(t, r.proxy.Conns(), 2, "the login was tried again within connect_timeout")
	assert.LessOrEqual(t, r.proxy.Conns(), maxLogins, "logins are spaced by backoff")
}
