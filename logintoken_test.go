package pgsecure_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/awstest"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/pgsecure/pgsecure/secrets/awssm"
	"github.com/pgsecure/pgsecure/verify"
)

const (
	iamUser   = "iam_app"
	iamRegion = "eu-west-1"
	// staticPassword is a static password for the PAM role: it must never
	// reach the server.
	staticPassword = "Static-Passw0rd-never-sent"
)

var iamKeys = aws.Credentials{AccessKeyID: "AKIAPAMTEST000000001", SecretAccessKey: "pam-test-secret-access-key"}

// tokenServer is a PostgreSQL server whose role iam_app logs in through
// PAM (as RDS's rds_iam role does) and whose role app keeps scram-sha-256.
func tokenServer(t *testing.T, check func(user, token string) error) (*testutil.Postgres, *testutil.PKI, *testutil.PAM) {
	t.Helper()
	pg, pki := server(t, testutil.LocalServerOptions())
	pg.Exec(t, "CREATE ROLE "+iamUser+" LOGIN")
	pam := pg.UsePAM(t, testutil.PAMLogin{Roles: []string{iamUser}, Check: check})
	return pg, pki, pam
}

func rdsSource(endpoint string, keys aws.Credentials) *awssm.Source {
	cfg := aws.Config{Region: iamRegion, Credentials: awscreds.StaticCredentialsProvider{Value: keys}}
	return awssm.RDSIAM(cfg, endpoint, "", iamUser)
}

// TestRDSIAMLogsInThroughPAM is issue 22's RDS test: the real
// feature/rds/auth signer against a server that asks for the token in
// cleartext and checks it through PAM, as RDS does. The token logs in over
// the verified TLS connection and the server-side query proves TLS; static
// passwords for the same role (connection string, PGPASSWORD, a file) are
// refused with ErrInsecureAuth before anything is sent; a token the server
// rejects gives an error without the token; no token appears in any error
// or log line.
func TestRDSIAMLogsInThroughPAM(t *testing.T) {
	var endpoint string
	pg, pki, pam := tokenServer(t, func(user, token string) error {
		return awstest.RDSTokenCheck(endpoint, iamRegion, iamKeys)(user, token)
	})
	endpoint = fmt.Sprintf("localhost:%d", pg.Port)
	ctx := ctxT(t)
	logs := &testutil.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var errs []error

	t.Run("token logs in", func(t *testing.T) {
		pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port)).RootCAFile(pki.CAFile).
			Credentials(rdsSource(endpoint, iamKeys)).Logger(logger).Build(ctx)
		require.NoError(t, err)
		defer pool.Close()
		var user string
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_user").Scan(&user))
		assert.Equal(t, iamUser, user)
		ssl, _ := serverSaysSSL(t, ctx, pool)
		assert.True(t, ssl, "pg_stat_ssl.ssl")

		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		defer c.Release()
		r, err := pgsecure.ConnReport(c.Conn())
		require.NoError(t, err)
		assert.Equal(t, pgsecure.AuthPassword, r.AuthMethod, "the token went as a cleartext password")
		assert.Equal(t, verify.ProofServerQuery, r.Proof, "no channel binding: the server-side query is the proof")
		require.NotEmpty(t, pam.Attempts())
		for _, a := range pam.Attempts() {
			assert.NoError(t, a.Err, "the PAM check accepted the token")
		}
	})

	accepted := len(pam.Attempts())
	file := filepath.Join(t.TempDir(), "db.json")
	require.NoError(t, os.WriteFile(file, fmt.Appendf(nil, `{"username":%q,"password":%q}`, iamUser, staticPassword), 0o600))
	for _, tc := range []struct {
		name string
		dsn  string
		env  string
		src  secrets.Source
	}{
		{name: "connection string", dsn: fmt.Sprintf("postgres://%s:%s@localhost:%d/postgres", iamUser, staticPassword, pg.Port)},
		{name: "PGPASSWORD", dsn: fmt.Sprintf("postgres://%s@localhost:%d/postgres", iamUser, pg.Port), env: staticPassword},
		{name: "file source", dsn: fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port), src: secrets.File(file)},
		{name: "static source", dsn: fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port),
			src: secrets.Static(secrets.Credentials{User: iamUser, Password: secrets.NewSecret(staticPassword)})},
	} {
		t.Run("static password refused: "+tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("PGPASSWORD", tc.env)
			}
			b := pgsecure.NewBuilder(tc.dsn).RootCAFile(pki.CAFile).Logger(logger)
			if tc.src != nil {
				b = b.Credentials(tc.src)
			}
			pool, err := b.Build(ctx)
			if pool != nil {
				pool.Close()
			}
			require.ErrorIs(t, err, pgsecure.ErrInsecureAuth)
			assert.Contains(t, err.Error(), "nothing was sent")
			assert.Contains(t, err.Error(), "login-token source", "the fix names what would work")
			assert.Len(t, pam.Attempts(), accepted, "no password reached the server's PAM check")
			errs = append(errs, err)
		})
	}

	t.Run("rejected token", func(t *testing.T) {
		before := len(pam.Attempts())
		foreign := aws.Credentials{AccessKeyID: iamKeys.AccessKeyID, SecretAccessKey: "some-other-secret-key"}
		_, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port)).RootCAFile(pki.CAFile).
			Credentials(rdsSource(endpoint, foreign)).Logger(logger).Build(ctx)
		var rejected *pgsecure.TokenRejectedError
		require.ErrorAs(t, err, &rejected)
		assert.Contains(t, err.Error(), "PAM authentication failed")
		assert.Contains(t, err.Error(), "login token from rdsiam://"+iamUser+"@"+endpoint, "the error names the source")
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, "28000", pgErr.Code)
		attempts := pam.Attempts()
		// A fresh token is retried once, unless it is the same one (RDS
		// tokens signed within the same second are identical).
		require.Greater(t, len(attempts), before)
		for _, a := range attempts[before:] {
			require.Error(t, a.Err, "the server's PAM check rejected the foreign token")
		}
		errs = append(errs, err)
	})

	attempts := pam.Attempts()
	require.NotEmpty(t, attempts)
	for _, a := range attempts {
		assert.NotEqual(t, staticPassword, a.Password)
		assert.NotContains(t, logs.String(), a.Password, "no token in any log line")
		for _, err := range errs {
			assert.NotContains(t, err.Error(), a.Password, "no token in any error")
		}
		// The signature is the token's secret part: not even that.
		sig := a.Password[strings.LastIndex(a.Password, "=")+1:]
		assert.NotContains(t, logs.String(), sig)
	}
	assert.NotContains(t, logs.String(), staticPassword)
}

// expiringSource hands out inner's credentials with LoginToken as given and
// an Expires an hour away, except right after arm: the next credentials it
// hands out have already expired. It stands for a token or lease that ends
// while its connection is still open, without sleeping; it manages its own
// lifetime, so no cache refuses the expired credentials.
type expiringSource struct {
	inner      secrets.Source
	loginToken bool
	armed      atomic.Bool
}

func (s *expiringSource) Credentials(ctx context.Context) (secrets.Credentials, error) {
	c, err := s.inner.Credentials(ctx)
	c.Expires = time.Now().Add(time.Hour)
	if s.armed.CompareAndSwap(true, false) {
		c.Expires = time.Now().Add(-time.Second)
	}
	c.LoginToken = s.loginToken
	return c, err
}

func (*expiringSource) ManagesLifetime() bool { return true }

// TestLoginTokenExpiryIsNotSessionExpiry: a connection opened with a login
// token (RDS IAM) stays in the pool after the token expires, as AWS
// documents that the token matters only at login; a connection opened with
// credentials whose expiry ends the session (a Vault lease) is retired.
func TestLoginTokenExpiryIsNotSessionExpiry(t *testing.T) {
	t.Parallel()
	var endpoint string
	pg, pki, _ := tokenServer(t, func(user, token string) error {
		return awstest.RDSTokenCheck(endpoint, iamRegion, iamKeys)(user, token)
	})
	endpoint = fmt.Sprintf("localhost:%d", pg.Port)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		src  *expiringSource
		kept bool
	}{
		{"login token (RDS IAM)", &expiringSource{inner: rdsSource(endpoint, iamKeys), loginToken: true}, true},
		{"lease (Vault)", &expiringSource{inner: secrets.Static(secrets.Credentials{User: appUser, Password: secrets.NewSecret(appPassword)})}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var opened []uint32
			pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port)).RootCAFile(pki.CAFile).
				Credentials(tc.src).ConfigurePool(func(c *pgxpool.Config) {
				c.MaxConns = 1
				c.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
					mu.Lock()
					opened = append(opened, c.PgConn().PID())
					mu.Unlock()
					return nil
				}
			}).Build(ctx)
			require.NoError(t, err)
			defer pool.Close()
			pid := func() (pid uint32) {
				require.NoError(t, pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
				return pid
			}
			pool.Reset()
			mu.Lock()
			before := len(opened)
			mu.Unlock()
			tc.src.armed.Store(true) // the next connection is opened with credentials that have expired
			first := pid()
			second := pid()
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, first, second)
			if tc.kept {
				require.Len(t, opened, before+1, "one connection opened, with the expired token, and none to replace it")
				assert.Equal(t, opened[before], first, "the connection opened with the expired token serves queries")
			} else {
				require.Len(t, opened, before+2, "the connection opened with the expired lease, then its replacement")
				assert.Equal(t, opened[before+1], first, "the connection opened with the expired lease was retired")
			}
		})
	}
}

// shortLived hands out inner's credentials as if they expired after life:
// RDS tokens live 15 minutes, too long to watch a rotation in a test.
type shortLived struct {
	inner secrets.Source
	life  time.Duration
}

func (s shortLived) Credentials(ctx context.Context) (secrets.Credentials, error) {
	c, err := s.inner.Credentials(ctx)
	c.Expires = time.Now().Add(s.life)
	return c, err
}

// TestRDSIAMTokenRotatesUnderLoad: tokens (declared to live 6 s, so they
// are replaced from 2 s on, refresh.MinMargin before they expire) are
// replaced before they expire while connections keep being opened through
// PAM; no query fails, and a session opened with the first token keeps
// working after it expired (the load runs 7 s).
func TestRDSIAMTokenRotatesUnderLoad(t *testing.T) {
	t.Parallel()
	testutil.SkipIfShort(t, "7 s of load while IAM tokens rotate")
	var endpoint string
	pg, pki, pam := tokenServer(t, func(user, token string) error {
		return awstest.RDSTokenCheck(endpoint, iamRegion, iamKeys)(user, token)
	})
	endpoint = fmt.Sprintf("localhost:%d", pg.Port)
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://localhost:%d/postgres", pg.Port)).RootCAFile(pki.CAFile).
		Credentials(shortLived{inner: rdsSource(endpoint, iamKeys), life: 6 * time.Second}).ConfigurePool(testutil.ChurnConnections).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	testutil.AssertTokensRotate(ctx, t, pool, pam, 7*time.Second)
}
