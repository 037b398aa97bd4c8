package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckPrintsEachFailureOnce: the reason a target failed appears once in
// what a person reads: in the table (stdout) and not again on stderr, not
// again as the probe's finding and section, and without six "not reached"
// stages when no connection was even tried. With --json, stdout is for
// programs: the reason is in the document and once on stderr.
func TestCheckPrintsEachFailureOnce(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	unreachable := fmt.Sprintf("postgres://app:%s@127.0.0.1:%d/postgres", appPassword, closedPort(t))

	res := runCLI(t, noEnv, "check", "--ca", pki.CAFile, unreachable)
	assert.Equal(t, exitUnreachable, res.code, res.all())
	assert.Equal(t, 1, strings.Count(res.all(), "connection refused"), res.all())
	assert.Empty(t, res.stderr)
	assert.Contains(t, res.stdout, "ERROR")
	assert.NotContains(t, res.stdout, "plaintext probe", "nothing to probe: the server was not reached")

	out, res := checkOutputJSON(t, noEnv, "--ca", pki.CAFile, unreachable)
	assert.Equal(t, exitUnreachable, res.code)
	assert.Equal(t, 1, strings.Count(res.stderr, "connection refused"), res.stderr)
	assert.Contains(t, out.Targets[0].Error, "connection refused")
	assert.Equal(t, stageFailed, stageResults(*out.Targets[0])[stageTCP])

	// A usage error: no stage was reached, so none is listed; the reason once.
	res = runCLI(t, noEnv, "check", unreachable)
	assert.Equal(t, exitUsage, res.code, res.all())
	assert.NotContains(t, res.stdout, "not reached")
	assert.NotContains(t, res.stdout, "stages")
	assert.Equal(t, 1, strings.Count(res.all(), "no CA certificate given"), res.all())
	assert.Empty(t, res.stderr)
	r, _ := checkJSON(t, noEnv, unreachable)
	assert.Len(t, r.Stages, 6, "the JSON keeps its six stages (SCHEMA.md)")
}

// adminIn runs statements as superuser connected to database db.
func adminIn(t *testing.T, pg *testutil.Postgres, db string, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", pg.SocketDir, pg.Port, db))
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, s := range sql {
		_, err := conn.Exec(ctx, s)
		require.NoError(t, err, s)
	}
}

// TestCheckGrantHintsNameTheDatabase: the grants that let a role read
// pg_hba_file_rules are per database; the hint names the database check
// connects to, and running them there (not elsewhere) makes the check run.
func TestCheckGrantHintsNameTheDatabase(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{Conf: testutil.GuideConf()})
	pg.CreateRole(t, "app", appPassword)
	pg.CreateDatabase(t, "appdb", "app")
	dsn := pg.URL("app", appPassword, "appdb")

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
	require.Equal(t, exitUnchecked, res.code, res.all())
	hba := findingsOf(t, r, "pg_hba")[0]
	assert.Equal(t, sevUnchecked, hba.Severity)
	grants := []string{"GRANT SELECT ON pg_hba_file_rules TO app", "GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO app"}
	for _, g := range grants {
		assert.Contains(t, hba.Fix, g)
	}
	assert.Contains(t, hba.Fix, `connected to database "appdb"`)
	settings := findingsOf(t, r, "ssl_min_protocol_version")[0]
	assert.Equal(t, sevUnchecked, settings.Severity)
	assert.Contains(t, settings.Fix, "GRANT pg_read_all_settings TO app")

	// The grants given in another database do not help...
	adminIn(t, pg, "postgres", grants...)
	r, _ = checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
	assert.Equal(t, sevUnchecked, findingsOf(t, r, "pg_hba")[0].Severity, "grants on pg_hba_file_rules are per database")
	// ...given where the hint says, they do.
	adminIn(t, pg, "appdb", grants...)
	adminIn(t, pg, "postgres", "GRANT pg_read_all_settings TO app")
	r, res = checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
	assert.NotEqual(t, sevUnchecked, findingsOf(t, r, "pg_hba")[0].Severity, res.all())
	assert.Contains(t, findingsOf(t, r, "pg_hba")[0].Message, "pg_hba.conf line 1", "read: the harness's local trust line is reported")
	assert.Equal(t, sevOK, findingsOf(t, r, "ssl_min_protocol_version")[0].Severity, res.all())
}

// TestCertsRenewReloadGrantHint: a --reload role that may not call
// pg_reload_conf() is told the GRANT and the database to run it in; after
// it, the same command reloads.
func TestCertsRenewReloadGrantHint(t *testing.T) {
	t.Parallel()
	isolate(t)
	dir := newCADir(t, "10")
	pg := testutil.StartPostgres(t, testutil.PGOptions{
		ServerCertPEM: readFile(t, filepath.Join(dir, "server.crt")), ServerKeyPEM: readFile(t, filepath.Join(dir, "server.key"))})
	pg.CreateRole(t, "renewer", appPassword)
	pg.CreateDatabase(t, "ops", "renewer")
	srvCert, srvKey := pg.ServerCertFiles()
	reload := pg.URL("renewer", appPassword, "ops")

	res := runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", srvCert, "--key", srvKey, "--reload", reload)
	assert.Equal(t, exitNoLogin, res.code, res.all())
	assert.Contains(t, res.stderr, `GRANT EXECUTE ON FUNCTION pg_reload_conf() TO renewer`)
	assert.Contains(t, res.stderr, `connected to database "ops"`)
	assert.NotContains(t, res.all(), appPassword)

	adminIn(t, pg, "postgres", "GRANT EXECUTE ON FUNCTION pg_reload_conf() TO renewer")
	res = runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", srvCert, "--key", srvKey, "--reload", reload)
	assert.Equal(t, exitNoLogin, res.code, "a grant in another database does not count: %s", res.all())

	adminIn(t, pg, "ops", "GRANT EXECUTE ON FUNCTION pg_reload_conf() TO renewer")
	res = runCLI(t, noEnv, "certs", "renew", "--ca-dir", dir, "--cert", srvCert, "--key", srvKey, "--reload", reload)
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "new connections are served serial "+hexSerial(readCert(t, srvCert).SerialNumber))
}

// TestCheckHintsNeverNameTheLibrary: a server requiring a client
// certificate; the command's output names its flags, and any Builder
// option it names (the library's fixes name libpq's setting, the option
// and the flag) comes with its flag.
func TestCheckHintsNeverNameTheLibrary(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{ClientCAPEM: pki.CA.CertPEM, HBA: []string{
		"hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full",
		"hostnossl all all 0.0.0.0/0 reject",
	}})
	pg.CreateRole(t, "app", appPassword)
	res := runCLI(t, noEnv, "check", "--ca", pki.CAFile, pg.URL("app", appPassword, "postgres"))
	assert.Equal(t, exitNoLogin, res.code, res.all())
	assert.Contains(t, res.stdout, "--cert FILE --key FILE")
	assertOptionsNameFlags(t, res.all())
}

// TestVersion: `pgsecure version` and `--version` print the module, its
// version and the Go toolchain, in process and from a built binary.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"version", "--version"} {
		res := runCLI(t, noEnv, arg)
		require.Equal(t, exitOK, res.code, res.all())
		assert.Contains(t, res.stdout, "github.com/pgsecure/pgsecure")
		assert.Contains(t, res.stdout, runtime.Version())
		assert.Empty(t, res.stderr)
	}

	bin := filepath.Join(t.TempDir(), "pgsecure")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "HOME="+realHome) // the go command's caches live under the real HOME
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(bin, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	assert.Regexp(t, `(?m)^pgsecure \S+`, s)
	assert.Contains(t, s, "module  github.com/pgsecure/pgsecure ")
	assert.Contains(t, s, "go      "+runtime.Version())
	assert.Contains(t, s, "command github.com/pgsecure/pgsecure/cmd/pgsecure")
}
