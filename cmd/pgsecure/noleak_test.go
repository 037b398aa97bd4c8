package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
)

// hashPassword is a URL password with '#' in it, which libpq (psql) and pgx
// read up to the '@' before the host, unencoded.
const hashPassword = "2024#Tail-pw"

// TestCheckNeverPrintsAHashPassword: a URL password holding '#' appears
// neither in check's target label, nor in --json, nor on stderr when the
// DSN is refused as misconfigured. psql logs in with the same URL.
func TestCheckNeverPrintsAHashPassword(t *testing.T) {
	t.Parallel()
	isolate(t)
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{Conf: testutil.GuideConf()})
	pg.CreateRole(t, "u", hashPassword)
	dsn := fmt.Sprintf("postgres://u:%s@%s/postgres", hashPassword, pg.Addr())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, "-w", "-X", "-A", "-t", "-c", "SELECT current_user", dsn+"?sslmode=verify-full&sslrootcert="+pki.CAFile)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "psql logs in with the password up to the '@': %s", out)
	require.Equal(t, "u", strings.TrimSpace(string(out)))

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
	assert.Equal(t, "u", r.User, "logged in: %s", res.all())
	assert.Equal(t, "postgres://u:"+secrets.Redacted+"@"+pg.Addr()+"/postgres", r.Target)
	assertNoSecret(t, res, hashPassword)

	table := runCLI(t, noEnv, "check", "--ca", pki.CAFile, dsn)
	assertNoSecret(t, table, hashPassword)

	refused := runCLI(t, noEnv, "check", "--ca", pki.CAFile, dsn+"?sslmode=require")
	assert.Equal(t, exitUsage, refused.code, refused.all())
	assert.Contains(t, refused.stdout, "sslmode", "the table shows the error (stderr stays empty)")
	assertNoSecret(t, refused, hashPassword)
	refusedJSON := runCLI(t, noEnv, "check", "--json", "--ca", pki.CAFile, dsn+"?sslmode=require")
	assertNoSecret(t, refusedJSON, hashPassword)
}

// TestCheckNeverPrintsAnSSLPassword: sslpassword (and password) in a URL
// query or a keyword/value string, quoted or not, stay out of --json, the
// table and stderr.
func TestCheckNeverPrintsAnSSLPassword(t *testing.T) {
	t.Parallel()
	isolate(t)
	ca := testutil.NewPKI(t).CAFile
	port := closedPort(t)
	const sslPw, pw = "Key-Pass-6f2", "Pass word's-71"
	for _, dsn := range []string{
		fmt.Sprintf("postgres://app@127.0.0.1:%d/postgres?sslpassword=%s", port, sslPw),
		fmt.Sprintf("postgres://app@127.0.0.1:%d/postgres?password=%s&sslpassword=%s", port, strings.ReplaceAll(pw, " ", "%20"), sslPw),
		fmt.Sprintf(`host=127.0.0.1 port=%d user=app sslpassword='%s' password='%s'`, port, sslPw, strings.ReplaceAll(pw, "'", `\'`)),
		fmt.Sprintf(`host=127.0.0.1 port=%d user=app sslpassword=%s password=%s`, port, sslPw, strings.NewReplacer(" ", `\ `, "'", `\'`).Replace(pw)),
	} {
		out, res := checkOutputJSON(t, noEnv, "--ca", ca, dsn)
		require.Len(t, out.Targets, 1)
		assert.Equal(t, exitUnreachable, res.code, "%s: %s", dsn, res.all())
		assert.Contains(t, out.Targets[0].Target, "sslpassword="+secrets.Redacted, dsn)
		assertNoSecret(t, res, sslPw, pw)
		assertNoSecret(t, runCLI(t, noEnv, "check", "--ca", ca, dsn), sslPw, pw)
	}
}

// TestCheckJSONStaysJSONWithAShortPassword: PGPASSWORD=2 leaves --json valid
// JSON ("schema_version": 2 is not a password).
func TestCheckJSONStaysJSONWithAShortPassword(t *testing.T) {
	t.Parallel()
	isolate(t)
	ca := testutil.NewPKI(t).CAFile
	dsn := fmt.Sprintf("postgres://app@127.0.0.1:%d/postgres", closedPort(t))
	out, res := checkOutputJSON(t, envOf(map[string]string{"PGPASSWORD": "2"}), "--ca", ca, dsn)
	assert.Equal(t, schemaVersion, out.SchemaVersion)
	assert.Equal(t, dsn, out.Targets[0].Target)
	assert.NotContains(t, res.all(), secrets.Redacted, "nothing printed is a password, so nothing is redacted")
}

// assertNoSecret fails when any output of res holds one of secrets, as
// written or percent-encoded.
func assertNoSecret(t *testing.T, res result, secretValues ...string) {
	t.Helper()
	for _, s := range secretValues {
		for _, form := range spellings(s) {
			assert.NotContains(t, res.stdout, form, "stdout")
			assert.NotContains(t, res.stderr, form, "stderr")
		}
	}
}

// spellings returns s as written and in the encodings output could use.
func spellings(s string) []string {
	return []string{s, url.QueryEscape(s), url.PathEscape(s), strings.ReplaceAll(url.QueryEscape(s), "+", "%20")}
}
