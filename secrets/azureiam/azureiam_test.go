package azureiam

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
)

const dbUser = "app@contoso.com" // an Entra principal's name, as created on the server

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// credential is a real azidentity client secret credential whose authority
// is the loopback test authority (instance discovery disabled).
func credential(t *testing.T, a *entraAuthority) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, clientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: a.URL + "/", Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}},
			Transport: a.Client(),
		},
		DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	return cred
}

func TestMisconfiguredSourcesSayWhat(t *testing.T) {
	_, err := New(nil, dbUser).Credentials(context.Background())
	assert.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Contains(t, err.Error(), "no token credential")
	a := newEntraAuthority(t, time.Hour)
	_, err = New(credential(t, a), "").Credentials(context.Background())
	assert.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Contains(t, err.Error(), "no database user")

	for uri, want := range map[string]string{
		"azureiam://":                             "no database user",
		"azureiam://host?user=x":                  "want azureiam://?user=NAME",
		"azureiam://?user=x&client_secret=s3cr3t": "would put a secret in configuration",
	} {
		_, err := secrets.Open(ctxT(t), uri)
		require.Error(t, err, uri)
		assert.Contains(t, err.Error(), want, uri)
		assert.NotContains(t, err.Error(), "s3cr3t", uri)
	}
}

// TestEntraIDLogsInThroughPAM is issue 22's Azure test: the real azidentity
// client secret credential against a loopback authority, then a login to
// PostgreSQL whose PAM check accepts only tokens that authority issued, as
// Azure Database for PostgreSQL does. A static password for the same user
// stays refused with nothing sent; a revoked secret fails with an error
// naming the source; no token or secret appears in an error or log.
func TestEntraIDLogsInThroughPAM(t *testing.T) {
	a := newEntraAuthority(t, time.Hour)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.Exec(t, `CREATE ROLE "`+dbUser+`" LOGIN`)
	pam := pg.UsePAM(t, testutil.PAMLogin{Roles: []string{dbUser}, Check: a.check})
	ctx := ctxT(t)
	logs := &testutil.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dsn := fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port)

	pool, err := pgsecure.NewBuilder(dsn).RootCAFile(pki.CAFile).Credentials(New(credential(t, a), dbUser)).Logger(logger).Build(ctx)
	require.NoError(t, err)
	var user string
	var ssl bool
	require.NoError(t, pool.QueryRow(ctx, "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&user, &ssl))
	pool.Close()
	assert.Equal(t, dbUser, user)
	assert.True(t, ssl, "pg_stat_ssl.ssl")
	accepted := pam.Attempts()
	require.NotEmpty(t, accepted)
	for _, at := range accepted {
		assert.NoError(t, at.Err)
	}

	static := secrets.Static(secrets.Credentials{User: dbUser, Password: secrets.NewSecret("a-static-password")})
	_, err = pgsecure.NewBuilder(dsn).RootCAFile(pki.CAFile).Credentials(static).Logger(logger).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureAuth)
	assert.Len(t, pam.Attempts(), len(accepted), "the static password never reached the server")

	a.revoke()
	_, err = pgsecure.NewBuilder(dsn).RootCAFile(pki.CAFile).Credentials(New(credential(t, a), dbUser)).Logger(logger).Build(ctx)
	require.ErrorIs(t, err, secrets.ErrAccessDenied)
	assert.Contains(t, err.Error(), "azureiam://?user="+dbUser, "the error names the source")
	assert.NotContains(t, err.Error(), clientSecret)
	assert.NotContains(t, logs.String(), clientSecret)
	for _, at := range pam.Attempts() {
		assert.NotContains(t, logs.String(), at.Password)
		assert.NotContains(t, err.Error(), at.Password)
	}
}
