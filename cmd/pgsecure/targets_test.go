package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	return testutil.RefusingPort(t)
}

// TestCheckManyTargets checks a small fleet from the command line and a
// --targets file in one run: one report, exit code of the worst target.
func TestCheckManyTargets(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	good := pki.StartPostgres(t, testutil.PGOptions{Conf: testutil.GuideConf()})
	good.CreateRole(t, "app", appPassword)
	plaintext := pki.StartPostgres(t, testutil.PGOptions{Conf: testutil.GuideConf(), HBA: []string{"host all all 127.0.0.1/32 scram-sha-256"}})
	plaintext.CreateRole(t, "app", appPassword)
	down := fmt.Sprintf("postgres://app@127.0.0.1:%d/postgres", closedPort(t))

	targets := filepath.Join(t.TempDir(), "fleet.txt")
	require.NoError(t, os.WriteFile(targets, []byte("# nightly fleet\n\n"+plaintext.URL("app", appPassword, "postgres")+"\n  "+down+"\n"), 0o600))

	out, res := checkOutputJSON(t, noEnv, "--ca", pki.CAFile, "--targets", targets, good.URL("app", appPassword, "postgres"))
	assert.Equal(t, exitInsecure, res.code, res.all())
	require.Len(t, out.Targets, 3)
	assert.Equal(t, "postgres://app:"+secrets.Redacted+"@"+good.Addr()+"/postgres", out.Targets[0].Target, "arguments first, then the file, in order")
	assert.Equal(t, []string{"incomplete", "insecure", "unreachable"}, []string{out.Targets[0].Verdict, out.Targets[1].Verdict, out.Targets[2].Verdict})
	assert.Equal(t, []int{exitUnchecked, exitInsecure, exitUnreachable}, []int{out.Targets[0].ExitCode, out.Targets[1].ExitCode, out.Targets[2].ExitCode})
	assert.Equal(t, down, out.Targets[2].Target)
	assert.Equal(t, stageFailed, stageResults(*out.Targets[2])[stageTCP])
	assert.NotContains(t, res.all(), appPassword)

	table := runCLI(t, noEnv, "check", "--ca", pki.CAFile, "--targets", targets, good.URL("app", appPassword, "postgres"))
	assert.Equal(t, exitInsecure, table.code)
	assert.Contains(t, table.stdout, "== target 3 of 3: "+down)
	assert.Regexp(t, `INSECURE +exit 1  postgres://app:\[REDACTED\]@`+plaintext.Addr(), table.stdout)
	assert.Regexp(t, `UNREACHABLE +exit 4  `+down, table.stdout)
	assert.Contains(t, table.stdout, "overall: INSECURE (exit 1)")
	assert.NotContains(t, table.stdout, "OK ", "a fleet's table shows what needs attention; --json has everything")
	assert.Contains(t, table.stdout, "tcp             failed", "the stages of a target that did not pass all")
	assert.NotContains(t, table.all(), appPassword)

	// Without the insecure one, the worst is the unreachable one.
	_, res = checkOutputJSON(t, noEnv, "--ca", pki.CAFile, good.URL("app", appPassword, "postgres"), down)
	assert.Equal(t, exitUnreachable, res.code)
}

// TestCheckHungServer: a timeout names the stage and the flag; the plaintext
// probe gets its own time and says it could not tell.
func TestCheckHungServer(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	host, port, _ := net.SplitHostPort(testutil.SilentServer(t))
	dsn := "host=" + host + " port=" + port + " user=app dbname=postgres connect_timeout=0"

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, "--timeout", "300ms", "--probe-timeout", "200ms", dsn)
	assert.Equal(t, exitUnreachable, res.code, res.all())
	assert.Equal(t, stagePassed, stageResults(r)[stageTCP])
	assert.Equal(t, stageFailed, stageResults(r)[stageTLS])
	assert.Contains(t, r.Hint, "no answer within --timeout 300ms during the TLS handshake")
	require.NotNil(t, r.Probe)
	assert.Equal(t, "unknown", r.Probe.Result)
	assert.Contains(t, r.Probe.Message, "the plaintext probe got no answer from "+host+":"+port+" within --probe-timeout 200ms: whether the server accepts connections without TLS is unknown")
	assert.Contains(t, findings(r, sevUnchecked), "not checked: the plaintext probe got no answer")
}
