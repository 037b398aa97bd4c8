package pgsecure_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/pgsecure/pgsecure/verify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildRefusal is one way Build's first connection is refused, and what its
// error must say.
type buildRefusal struct {
	name     string
	build    func(t *testing.T) *pgsecure.Builder
	where    string // HOST:PORT (user U, database D), after "pgsecure: "
	problem  string // what the error says right after where
	stage    pgsecure.Stage
	fix      []string // in the error's fix
	typed    func(err error) bool
	password string // must not appear in the error
}

// assertBuildRefusal checks the one shape every refusal Build returns has:
// one "pgsecure:" prefix, then the address, user and database, then the
// problem; no pgx hook names; errors.As reaching pgx's *pgconn.ConnectError,
// pgsecure's *ConnectError and the typed cause; never the password.
func assertBuildRefusal(t *testing.T, ctx context.Context, c buildRefusal) {
	t.Helper()
	pool, err := c.build(t).Build(ctx)
	if pool != nil {
		pool.Close()
	}
	require.Error(t, err)
	msg := err.Error()
	t.Log(msg)
	assert.True(t, strings.HasPrefix(msg, "pgsecure: "+c.where+": "+c.problem), "the error starts with where, then the problem:\n%s", msg)
	assert.Equal(t, 1, strings.Count(msg, "pgsecure:"), "one prefix: %s", msg)
	for _, glue := range []string{"AfterNetConnect", "failed to connect to", "startup check failed", "ValidateConnect"} {
		assert.NotContains(t, msg, glue)
	}
	var pgxErr *pgconn.ConnectError
	assert.True(t, errors.As(err, &pgxErr), "errors.As reaches pgx's *pgconn.ConnectError")
	var ce *pgsecure.ConnectError
	require.True(t, errors.As(err, &ce), "errors.As reaches *pgsecure.ConnectError")
	assert.Equal(t, c.stage, ce.Stage)
	for _, f := range c.fix {
		assert.Contains(t, ce.Fix, f)
		assert.Contains(t, msg, "; fix: "+ce.Fix)
	}
	if c.typed != nil {
		assert.True(t, c.typed(err), "errors.As reaches the typed cause: %#v", err)
	}
	if c.password != "" {
		assert.NotContains(t, msg, c.password)
	}
}

func as[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// TestBuildRefusalsAreProblemFirst: each way Build's first connection is
// refused by a real server (or, for the timeout, by a peer that never
// answers) reads "pgsecure: HOST:PORT (user U, database D): problem", with
// the fix at the end.
func TestBuildRefusalsAreProblemFirst(t *testing.T) {
	isolateEnv(t)
	ctx := ctxT(t)
	pki := testutil.NewPKI(t)
	_, _, pair := pki.Server(t, testutil.LocalServerOptions())
	pg := pki.StartPostgres(t, testutil.PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: pair.KeyPEM, HBA: []string{
		"hostssl all md5user 127.0.0.1/32 md5",
		"hostssl all app 127.0.0.1/32 scram-sha-256",
		"hostnossl all all 0.0.0.0/0 reject",
	}})
	pg.CreateRole(t, appUser, appPassword)
	pg.Exec(t, "SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'Md5-Pass-Word'")
	pg.CreateRole(t, "nohba", "No-Hba-Pass-Word")
	plain := testutil.NewPKI(t).StartPostgres(t, testutil.PGOptions{SSLOff: true})

	where := func(host string, port int, user string) string {
		return fmt.Sprintf("%s:%d (user %s, database postgres)", host, port, user)
	}
	const wrongPassword = "Wr0ng-Horse-Battery"
	secretDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(secretDir, "username"), []byte(appUser), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(secretDir, "password"), []byte(wrongPassword), 0o600))

	silent := testutil.SilentPort(t) // a peer that accepts TCP and never answers

	rows := []buildRefusal{{
		name: "wrong CA",
		build: func(t *testing.T) *pgsecure.Builder {
			return pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(testutil.NewPKI(t).CAFile)
		},
		where: where("localhost", pg.Port, appUser), problem: "server certificate refused: ", stage: pgsecure.StageTLSHandshake,
		fix: []string{"RootCAFile"}, typed: as[*pgsecure.CertificateError], password: appPassword,
	}, {
		name: "wrong host",
		build: func(t *testing.T) *pgsecure.Builder {
			return pgsecure.NewBuilder(fmt.Sprintf("host=db.wrong.example hostaddr=127.0.0.1 port=%d user=%s password=%s dbname=postgres", pg.Port, appUser, appPassword)).RootCAFile(pki.CAFile)
		},
		where: where("db.wrong.example", pg.Port, appUser), problem: "server certificate refused: ", stage: pgsecure.StageTLSHandshake,
		typed: as[*pgsecure.CertificateError], password: appPassword,
	}, {
		name: "plaintext server",
		build: func(t *testing.T) *pgsecure.Builder {
			return pgsecure.NewBuilder(dsn(plain, "localhost")).RootCAFile(pki.CAFile)
		},
		where: where("localhost", plain.Port, appUser), problem: "the server declined TLS", stage: pgsecure.StageTLSRequest,
		fix: []string{"ssl"}, typed: as[*verify.Error], password: appPassword,
	}, {
		name: "auth method refused",
		build: func(t *testing.T) *pgsecure.Builder {
			return pgsecure.NewBuilder(fmt.Sprintf("postgres://md5user:Md5-Pass-Word@localhost:%d/postgres", pg.Port)).RootCAFile(pki.CAFile)
		},
		where: where("localhost", pg.Port, "md5user"), problem: "the server asked for md5 authentication", stage: pgsecure.StageAuth,
		fix: []string{"scram-sha-256"}, typed: as[*pgsecure.AuthMethodError], password: "Md5-Pass-Word",
	}, {
		name: "rejected password in the connection string",
		build: func(t *testing.T) *pgsecure.Builder {
			return pgsecure.NewBuilder(fmt.Sprintf("postgres://%s:%s@localhost:%d/postgres", appUser, wrongPassword, pg.Port)).RootCAFile(pki.CAFile)
		},
		where: where("localhost", pg.Port, appUser), problem: "the server rejected the password (SQLSTATE 28P01: ", stage: pgsecure.StageAuth,
		fix: []string{"the password in the connection string", `user "app"`}, typed: as[*pgconn.PgError], password: wrongPassword,
	}, {
		name: "rejected password from PGPASSWORD",
		build: func(t *testing.T) *pgsecure.Builder {
			t.Setenv("PGPASSWORD", wrongPassword)
			return pgsecure.NewBuilder(fmt.Sprintf("postgres://%s@localhost:%d/postgres", appUser, pg.Port)).RootCAFile(pki.CAFile)
		},
		where: where("localhost", pg.Port, appUser), problem: "the server rejected the password (SQLSTATE 28P01: ", stage: pgsecure.StageAuth,
		fix: []string{"PGPASSWORD"}, typed: as[*pgconn.PgError], password: wrongPassword,
	}, {
		name: "rejected password from a file source",
		build: func(t *testing.T) *pgsecure.Builder {
			return pgsecure.NewBuilder(fmt.Sprintf("host=localhost port=%d dbname=postgres connect_timeout=2", pg.Port)).RootCAFile(pki.CAFile).Credentials(secrets.File(secretDir))
		},
		where: where("localhost", pg.Port, appUser), problem: "the server rejected the password (SQLSTATE 28P01: ", stage: pgsecure.StageAuth,
		fix: []string{"file:" + secretDir}, password: wrongPassword,
		typed: func(err error) bool { return as[*pgconn.PgError](err) && as[*pgsecure.CredentialsRejectedError](err) },
	}, {
		name: "no pg_hba line",
		build: func(t *testing.T) *pgsecure.Builder {
			return pgsecure.NewBuilder(fmt.Sprintf("postgres://nohba:No-Hba-Pass-Word@localhost:%d/postgres", pg.Port)).RootCAFile(pki.CAFile)
		},
		where: where("localhost", pg.Port, "nohba"), problem: "the server refused the login (SQLSTATE 28000: ", stage: pgsecure.StageAuth,
		fix: []string{`hostssl postgres nohba CLIENT_ADDRESS/32 scram-sha-256`}, typed: as[*pgconn.PgError], password: "No-Hba-Pass-Word",
	}, {
		name: "timeout",
		build: func(t *testing.T) *pgsecure.Builder {
			return pgsecure.NewBuilder(fmt.Sprintf("host=localhost port=%d user=%s dbname=postgres connect_timeout=1", silent, appUser)).RootCAFile(pki.CAFile)
		},
		where: where("localhost", silent, appUser), problem: "timed out after ", stage: pgsecure.StageTLSRequest,
		fix: []string{"connect_timeout"}, typed: as[*pgsecure.TimeoutError],
	}}
	for _, c := range rows {
		t.Run(c.name, func(t *testing.T) { assertBuildRefusal(t, ctx, c) })
	}

	// Two hosts, each refused in its own way: each attempt's problem, in
	// order, in the one error.
	t.Run("two hosts", func(t *testing.T) {
		_, err := pgsecure.NewBuilder(fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=%s password=%s dbname=postgres", plain.Port, pg.Port, appUser, appPassword)).
			RootCAFile(testutil.NewPKI(t).CAFile).Build(ctx)
		require.Error(t, err)
		msg := err.Error()
		t.Log(msg)
		assert.True(t, strings.HasPrefix(msg, "pgsecure: "+where("127.0.0.1", plain.Port, appUser)+": no host accepted the connection (2 attempts): "), msg)
		assert.Contains(t, msg, fmt.Sprintf("127.0.0.1:%d: the server declined TLS", plain.Port))
		assert.Contains(t, msg, "server certificate refused")
		assert.Equal(t, 1, strings.Count(msg, "pgsecure:"))
		assert.True(t, as[*pgsecure.CertificateError](err))
		assert.True(t, as[*verify.Error](err))
		assert.NotContains(t, msg, appPassword)
	})

	// A caller who creates the pool from Config gets the same error from
	// Explain.
	t.Run("Explain after Config", func(t *testing.T) {
		b := pgsecure.NewBuilder(fmt.Sprintf("postgres://%s:%s@localhost:%d/postgres", appUser, wrongPassword, pg.Port)).RootCAFile(pki.CAFile)
		cfg, err := b.Config(ctx)
		require.NoError(t, err)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		defer pool.Close()
		err = b.Explain(pool.Ping(ctx))
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), "pgsecure: "+where("localhost", pg.Port, appUser)+": the server rejected the password (SQLSTATE 28P01: "), err.Error())
		assert.Contains(t, err.Error(), "fix: check the password in the connection string")
		assert.True(t, as[*pgconn.PgError](err))
		assert.NotContains(t, err.Error(), wrongPassword)
		assert.NoError(t, b.Explain(nil))
	})
}
