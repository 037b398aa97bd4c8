package pgsecure_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// authServer starts a real PostgreSQL whose only host line uses method, with
// the app role's password stored as encryption ("md5" or "scram-sha-256").
func authServer(t *testing.T, method, encryption string) (*testutil.Postgres, *testutil.PKI) {
	t.Helper()
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{HBA: []string{
		"hostssl all all 127.0.0.1/32 " + method, "hostnossl all all 0.0.0.0/0 reject"}})
	ctx := ctxT(t)
	admin, err := pg.Admin(ctx)
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "SET password_encryption = '"+encryption+"'")
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "CREATE ROLE "+appUser+" LOGIN PASSWORD '"+appPassword+"'")
	require.NoError(t, err)
	return pg, pki
}

// TestWeakAuthMethodsRefused: servers asking for password, md5 or nothing
// (trust) are refused before the client answers, with ErrInsecureAuth.
func TestWeakAuthMethodsRefused(t *testing.T) {
	t.Parallel()
	pg, pki := authServer(t, "scram-sha-256", "scram-sha-256") // one server; each row sets its method
	for _, c := range []struct{ method, enc, want string }{
		{"password", "scram-sha-256", "asked for password authentication"},
		{"md5", "md5", "asked for md5 authentication"},
		{"trust", "scram-sha-256", "without any authentication"},
	} {
		t.Run(c.method, func(t *testing.T) {
			pg.SetHBA(t, "hostssl all all 127.0.0.1/32 "+c.method, "hostnossl all all 0.0.0.0/0 reject")
			pg.Exec(t, "SET password_encryption = '"+c.enc+"'", "ALTER ROLE "+appUser+" PASSWORD '"+appPassword+"'")
			_, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Build(ctxT(t))
			require.ErrorIs(t, err, pgsecure.ErrInsecureAuth)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "require_auth=scram-sha-256")
			assert.NotContains(t, err.Error(), appPassword)
		})
	}
}

// TestSCRAMWithChannelBinding: the default policy accepts scram-sha-256 and
// binds it to the TLS channel when the server offers it; the report says so.
func TestSCRAMWithChannelBinding(t *testing.T) {
	t.Parallel()
	pg, pki := authServer(t, "scram-sha-256", "scram-sha-256")
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).RequireChannelBinding().Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	r := report(t, ctx, pool)
	assert.Equal(t, pgsecure.AuthSCRAM, r.AuthMethod)
	assert.Equal(t, "SCRAM-SHA-256-PLUS", r.SASLMechanism)
	assert.True(t, r.ChannelBound())
}

// TestRequireAuthWidenedExplicitly: a user who sets require_auth=md5 gets
// md5, with a warning in the log.
func TestRequireAuthWidenedExplicitly(t *testing.T) {
	t.Parallel()
	pg, pki := authServer(t, "md5", "md5")
	ctx := ctxT(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost") + "?require_auth=md5,scram-sha-256").
		RootCAFile(pki.CAFile).Logger(logger).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	r := report(t, ctx, pool)
	assert.Equal(t, pgsecure.AuthMD5, r.AuthMethod)
	assert.Contains(t, logs.String(), "require_auth allows more than scram-sha-256")
	assert.NotContains(t, logs.String(), appPassword)
}
