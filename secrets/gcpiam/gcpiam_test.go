package gcpiam

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/pgsecure/pgsecure/secrets/gcpiam/internal/gcptest"
)

const (
	saEmail = "db-app@proj.iam.gserviceaccount.com"
	saUser  = "db-app@proj.iam" // the database user Cloud SQL and AlloyDB derive from saEmail
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestServiceScopes(t *testing.T) {
	assert.Equal(t, "https://www.googleapis.com/auth/sqlservice.login", CloudSQL.Scope())
	assert.Equal(t, "https://www.googleapis.com/auth/alloydb.login", AlloyDB.Scope())
	assert.Equal(t, "", Service("spanner").Scope())
}

func TestDatabaseUserDerivedFromServiceAccount(t *testing.T) {
	assert.Equal(t, saUser, DatabaseUser([]byte(`{"type":"service_account","client_email":"`+saEmail+`"}`)))
	assert.Equal(t, "", DatabaseUser([]byte(`{"type":"authorized_user","client_id":"x"}`)), "an IAM user's email is not in its credentials")
	assert.Equal(t, "", DatabaseUser([]byte(`not json`)))
}

func TestMisconfiguredSourcesSayWhat(t *testing.T) {
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"})
	for _, tc := range []struct {
		src  *Source
		want string
	}{
		{New(ts, "spanner", saUser), "unknown service"},
		{New(ts, CloudSQL, ""), "no database user"},
		{New(nil, AlloyDB, saUser), "no token source"},
	} {
		_, err := tc.src.Credentials(context.Background())
		require.ErrorIs(t, err, secrets.ErrInvalid)
		assert.Contains(t, err.Error(), tc.want)
	}
	_, err := FromServiceAccountKey(context.Background(), []byte(`{"type":"authorized_user"}`), CloudSQL, "")
	assert.ErrorIs(t, err, secrets.ErrInvalid)
}

func TestURI(t *testing.T) {
	srv := gcptest.NewTokenServer(t, saEmail, CloudSQL.Scope(), time.Hour)
	keyFile := filepath.Join(t.TempDir(), "key.json")
	require.NoError(t, os.WriteFile(keyFile, srv.KeyJSON(t), 0o600))
	src, err := secrets.Open(ctxT(t), "gcpiam://?scope=cloudsql&credentials_file="+url.QueryEscape(keyFile))
	require.NoError(t, err)
	assert.Equal(t, "gcpiam://?scope=cloudsql&user="+saUser, secrets.NameOf(src), "the user is derived from the key")

	for uri, want := range map[string]string{
		"gcpiam://host?scope=cloudsql":                                   "want gcpiam://?scope=",
		"gcpiam://?scope=spanner":                                        "scope must be cloudsql or alloydb",
		"gcpiam://?scope=cloudsql&token=abc":                             "would put a secret in configuration",
		"gcpiam://?scope=alloydb&usr=x":                                  "not known",
		"gcpiam://?scope=alloydb&credentials_file=/nonexistent/key.json": "cannot read credentials_file",
	} {
		_, err := secrets.Open(ctxT(t), uri)
		require.Error(t, err, uri)
		assert.Contains(t, err.Error(), want, uri)
		assert.NotContains(t, err.Error(), "abc", uri)
	}
}

// source returns a source for the server's service account, talking to
// the loopback token server through its TLS client.
func source(t *testing.T, srv *gcptest.TokenServer, service Service) *Source {
	t.Helper()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
	src, err := FromServiceAccountKey(ctx, srv.KeyJSON(t), service, "")
	require.NoError(t, err)
	return src
}

// TestCloudSQLLogsInThroughPAM is issue 22's GCP test: the real
// golang.org/x/oauth2/google JWT-bearer flow against a loopback token server
// that verifies the signed assertion, then a login to PostgreSQL whose PAM
// check accepts only tokens that server issued for the derived user, as
// Cloud SQL does. A static password for the same user stays refused with
// nothing sent; a revoked key fails with an error naming the source; no
// token appears in an error or log.
func TestCloudSQLLogsInThroughPAM(t *testing.T) {
	for _, service := range []Service{CloudSQL, AlloyDB} {
		t.Run(string(service), func(t *testing.T) {
			srv := gcptest.NewTokenServer(t, saEmail, service.Scope(), time.Hour)
			pki := testutil.NewPKI(t)
			pg := pki.StartPostgres(t, testutil.PGOptions{})
			pg.Exec(t, `CREATE ROLE "`+saUser+`" LOGIN`)
			pam := pg.UsePAM(t, testutil.PAMLogin{Roles: []string{saUser}, Check: srv.Check})
			ctx := ctxT(t)
			logs := &testutil.LogBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			dsn := fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port)

			pool, err := pgsecure.NewBuilder(dsn).RootCAFile(pki.CAFile).Credentials(source(t, srv, service)).Logger(logger).Build(ctx)
			require.NoError(t, err)
			var user string
			var ssl bool
			require.NoError(t, pool.QueryRow(ctx, "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&user, &ssl))
			pool.Close()
			assert.Equal(t, saUser, user)
			assert.True(t, ssl, "pg_stat_ssl.ssl")
			accepted := pam.Attempts()
			require.NotEmpty(t, accepted)
			for _, a := range accepted {
				assert.NoError(t, a.Err)
			}

			static := secrets.Static(secrets.Credentials{User: saUser, Password: secrets.NewSecret("a-static-password")})
			_, err = pgsecure.NewBuilder(dsn).RootCAFile(pki.CAFile).Credentials(static).Logger(logger).Build(ctx)
			require.ErrorIs(t, err, pgsecure.ErrInsecureAuth)
			assert.Len(t, pam.Attempts(), len(accepted), "the static password never reached the server")

			srv.Revoke()
			_, err = pgsecure.NewBuilder(dsn).RootCAFile(pki.CAFile).Credentials(source(t, srv, service)).Logger(logger).Build(ctx)
			require.ErrorIs(t, err, secrets.ErrAccessDenied)
			assert.Contains(t, err.Error(), "gcpiam://?scope="+string(service)+"&user="+saUser, "the error names the source")
			assert.Contains(t, err.Error(), "invalid_grant")

			for _, a := range pam.Attempts() {
				assert.NotContains(t, logs.String(), a.Password)
				assert.NotContains(t, err.Error(), a.Password)
			}
		})
	}
}

// TestTokenRotatesUnderLoad: tokens that live 9 s are replaced before they
// expire, in the background, while connections keep being opened; no query
// fails, and sessions opened with an earlier token keep working.
func TestTokenRotatesUnderLoad(t *testing.T) {
	srv := gcptest.NewTokenServer(t, saEmail, CloudSQL.Scope(), 9*time.Second)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.Exec(t, `CREATE ROLE "`+saUser+`" LOGIN`)
	pam := pg.UsePAM(t, testutil.PAMLogin{Roles: []string{saUser}, Check: srv.Check})
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port)).RootCAFile(pki.CAFile).
		Credentials(source(t, srv, CloudSQL)).ConfigurePool(testutil.ChurnConnections).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	testutil.AssertTokensRotate(ctx, t, pool, pam, 12*time.Second)
}

// TestFromADCReadsGoogleApplicationCredentials: Application Default
// Credentials from GOOGLE_APPLICATION_CREDENTIALS (found before any
// metadata server is considered), the user derived from the key.
func TestFromADCReadsGoogleApplicationCredentials(t *testing.T) {
	srv := gcptest.NewTokenServer(t, saEmail, AlloyDB.Scope(), time.Hour)
	keyFile := filepath.Join(t.TempDir(), "key.json")
	require.NoError(t, os.WriteFile(keyFile, srv.KeyJSON(t), 0o600))
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", keyFile)
	ctx := context.WithValue(ctxT(t), oauth2.HTTPClient, srv.Client())
	src, err := FromADC(ctx, AlloyDB, "")
	require.NoError(t, err)
	c, err := src.Credentials(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, saUser, c.User)
	assert.True(t, c.LoginToken)
	assert.False(t, c.Expires.IsZero())
	assert.NoError(t, srv.Check(saUser, c.Password.Reveal()), "a token the server issued for the login scope")
}
