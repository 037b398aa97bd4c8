package pgsecure_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loginEvents collects the LoginFailed events of a pool.
type loginEvents struct {
	mu     sync.Mutex
	failed []pgsecure.LoginFailed
	ctxs   []context.Context
}

func (l *loginEvents) add(ctx context.Context, e pgsecure.Event) {
	if f, ok := e.(pgsecure.LoginFailed); ok {
		l.mu.Lock()
		l.failed = append(l.failed, f)
		l.ctxs = append(l.ctxs, ctx)
		l.mu.Unlock()
	}
}

func (l *loginEvents) all() []pgsecure.LoginFailed {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pgsecure.LoginFailed(nil), l.failed...)
}

type ctxMark struct{}

// TestFailedLoginUnderRunningPool: a running pool whose password is
// rotated in the database (28P01), then whose role pg_hba.conf no longer
// admits (28000). Each failed login reaches OnEvent with the connect's
// context and an error carrying the server's *pgconn.PgError; the log gets
// one Warn line per cause (user, host, SQLSTATE, source, count), however
// many connects fail; no password appears in a log line or an error.
func TestFailedLoginUnderRunningPool(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	for _, row := range []struct {
		name, source string
		builder      func() *pgsecure.Builder
	}{
		{"connection string", "connection string", func() *pgsecure.Builder {
			return pgsecure.NewBuilder(dsn(pg, "localhost"))
		}},
		{"credential source", "env", func() *pgsecure.Builder {
			env := map[string]string{"PGUSER": appUser, "PGPASSWORD": appPassword}
			src := secrets.EnvFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			// A rejected login from a source is retried until connect_timeout
			// (relogin); 2 s instead of the default 10 s keeps the three
			// failing connects short and changes nothing that is asserted.
			return pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres?connect_timeout=2", pg.Port)).Credentials(src)
		}},
	} {
		t.Run(row.name, func(t *testing.T) {
			pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, appPassword))
			pg.SetHBA(t, "hostssl all all 127.0.0.1/32 scram-sha-256", "hostssl all all ::1/128 scram-sha-256")
			ctx := ctxT(t)
			var logs testutil.LogBuffer
			events := &loginEvents{}
			pool, err := row.builder().RootCAFile(pki.CAFile).Logger(slog.New(slog.NewTextHandler(&logs, nil))).
				OnEvent(events.add).Build(ctx)
			require.NoError(t, err)
			defer pool.Close()

			const rotated = "Rotated-In-The-Database-0"
			pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, rotated))
			pool.Reset()
			var errs []error
			for range 3 {
				err := pool.Ping(context.WithValue(ctx, ctxMark{}, "ping"))
				require.Error(t, err)
				errs = append(errs, err)
			}
			failed := events.all()
			require.Len(t, failed, 3, "every failed login reaches OnEvent")
			for i, f := range failed {
				var pe *pgconn.PgError
				require.True(t, errors.As(f.Err, &pe), "the event's error carries the server's *pgconn.PgError: %v", f.Err)
				assert.Equal(t, "28P01", pe.Code)
				assert.Equal(t, "28P01", f.SQLState)
				assert.Equal(t, appUser, f.User)
				assert.Equal(t, "localhost", f.Host)
				assert.Equal(t, row.source == "env", f.Source == "env", "source %q", f.Source)
				assert.False(t, f.Time.IsZero())
				assert.Equal(t, "ping", events.ctxs[i].Value(ctxMark{}), "the event carries the connect's context")
				require.True(t, errors.As(errs[i], &pe), "Ping's error carries the *pgconn.PgError too")
			}
			lines := logLines(logs.String(), "pgsecure: login failed")
			require.Len(t, lines, 1, "repeats of one cause within the interval are counted, not logged: %s", logs.String())
			for _, want := range []string{"level=WARN", "host=localhost", "user=app", "sqlstate=28P01", "source=\"" + row.source + "\"", "count=1"} {
				if row.source == "env" && strings.HasPrefix(want, "source=") {
					want = "source=env"
				}
				assert.Contains(t, lines[0], want)
			}
			t.Logf("captured: %s", lines[0])
			t.Logf("captured event: %+v", failed[0])

			// pg_hba.conf no longer admits the role: 28000, a cause of its own.
			pg.Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, appPassword))
			pg.SetHBA(t, "hostssl all all 127.0.0.1/32 reject", "hostssl all all ::1/128 reject")
			require.Error(t, pool.Ping(ctx))
			require.Error(t, pool.Ping(ctx))
			failed = events.all()
			require.Len(t, failed, 5)
			var pe *pgconn.PgError
			require.True(t, errors.As(failed[4].Err, &pe))
			assert.Equal(t, "28000", pe.Code)
			assert.Equal(t, "28000", failed[4].SQLState)
			hba := logLines(logs.String(), "sqlstate=28000")
			require.Len(t, hba, 1, logs.String())
			assert.Contains(t, hba[0], "count=1")
			t.Logf("captured: %s", hba[0])

			all := logs.String()
			for _, e := range append(errs, failed[0].Err, failed[4].Err) {
				all += e.Error()
			}
			for _, secret := range []string{appPassword, rotated} {
				assert.NotContains(t, all, secret, "no password in logs or errors")
			}
		})
	}
	pg.SetHBA(t, "hostssl all all 127.0.0.1/32 scram-sha-256", "hostssl all all ::1/128 scram-sha-256")
}

// TestFailedLoginAtBuild: Build returns a rejected login (it is not also
// logged) and reports it to OnEvent.
func TestFailedLoginAtBuild(t *testing.T) {
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	var logs testutil.LogBuffer
	events := &loginEvents{}
	wrong := fmt.Sprintf("postgres://%s:%s@localhost:%d/postgres", appUser, "Not-The-Password-1", pg.Port)
	_, err := pgsecure.NewBuilder(wrong).RootCAFile(pki.CAFile).Logger(slog.New(slog.NewTextHandler(&logs, nil))).
		OnEvent(events.add).Build(ctx)
	var pe *pgconn.PgError
	require.True(t, errors.As(err, &pe), "%v", err)
	assert.Equal(t, "28P01", pe.Code)
	require.Len(t, events.all(), 1)
	assert.Equal(t, "28P01", events.all()[0].SQLState)
	assert.NotContains(t, logs.String(), "login failed", "Build returns it: said once, not twice")
}

// TestRetriedRejectionIsNotAFailedLogin: a password rotated in the
// database and in the store meets 28P01 with the cached one, and the one
// retry with fresh credentials succeeds: the connect did not fail, so there
// is no LoginFailed and no log line. A password the store does not know
// fails the retry too: one LoginFailed for the connect, not one per try.
func TestRetriedRejectionIsNotAFailedLogin(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	var logs testutil.LogBuffer
	events := &loginEvents{}
	src := &rotatingSource{passwords: []string{appPassword}}
	// connect_timeout=2: the failing connect at the end re-logs in until it
	// runs out; the default 10 s would only make the test slower.
	pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres?connect_timeout=2", pg.Port)).
		RootCAFile(pki.CAFile).Credentials(src).CredentialCache(secrets.CacheOptions{TTL: time.Hour}).
		Logger(slog.New(slog.NewTextHandler(&logs, nil))).OnEvent(events.add).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	src.passwords = append(src.passwords, "rotated-Password-2")
	pg.Exec(t, "ALTER ROLE "+appUser+" PASSWORD 'rotated-Password-2'")
	pool.Reset()
	require.NoError(t, pool.Ping(ctx), "the retry with the rotated password succeeded")
	assert.Empty(t, events.all(), "a rejection the retry overcame is not a failed login")
	assert.NotContains(t, logs.String(), "login failed")

	pg.Exec(t, "ALTER ROLE "+appUser+" PASSWORD 'unknown-to-the-store'")
	pool.Reset()
	require.Error(t, pool.Ping(ctx))
	failed := events.all()
	require.Len(t, failed, 1, "one failed login per connect")
	assert.Equal(t, "test-store", failed[0].Source)
	assert.Len(t, logLines(logs.String(), "pgsecure: login failed"), 1)
	assert.Contains(t, logs.String(), "source=test-store")
}

func logLines(logs, substr string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// nopTracer is a caller's pgx tracer.
type nopTracer struct{}

func (*nopTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (*nopTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestFailedLoginsSeenWithoutATracer: pgsecure learns of failed logins in
// its own pipeline, so a connection's tracer is the caller's own (none, or
// the one set with ConfigurePool), not a wrapper that costs two calls per
// query.
func TestFailedLoginsSeenWithoutATracer(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	mine := &nopTracer{}
	for _, tracer := range []pgx.QueryTracer{nil, mine} {
		pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).ConfigurePool(func(c *pgxpool.Config) {
			c.ConnConfig.Tracer = tracer
		}).Build(ctx)
		require.NoError(t, err)
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		assert.Equal(t, tracer, c.Conn().Config().Tracer, "the connection's tracer is the caller's")
		c.Release()
		pool.Close()
	}
}

// TestRoleNotPermittedToLogIn: PostgreSQL refuses a NOLOGIN role after
// authentication succeeded (28000 after AuthenticationOk); that is a
// failed login too: one event and a Warn line.
func TestRoleNotPermittedToLogIn(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	var logs testutil.LogBuffer
	events := &loginEvents{}
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).
		Logger(slog.New(slog.NewTextHandler(&logs, nil))).OnEvent(events.add).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	pg.Exec(t, "ALTER ROLE "+appUser+" NOLOGIN")
	pool.Reset()
	err = pool.Ping(ctx)
	require.Error(t, err)
	failed := events.all()
	require.Len(t, failed, 1, "%v", err)
	assert.Equal(t, "28000", failed[0].SQLState)
	assert.Equal(t, appUser, failed[0].User)
	assert.Contains(t, failed[0].Err.Error(), "not permitted to log in")
	assert.Len(t, logLines(logs.String(), "pgsecure: login failed"), 1)
}
