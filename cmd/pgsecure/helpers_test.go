package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realHome is HOME as the test process found it (TestMain replaces it), for
// tools such as the go command that keep their caches under it.
var realHome = os.Getenv("HOME")

// TestMain isolates the whole test process once, before any test runs: no
// PG* variable of the developer's shell, and HOME an empty directory, so pgx
// reads nothing of the developer's setup (~/.pgpass, ~/.postgresql). The
// CLI reads its own settings through the env func each test passes to run,
// so tests need not touch the environment and can run in parallel.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "PG") {
			_ = os.Unsetenv(name)
		}
	}
	home, err := os.MkdirTemp("", "pgsecure-cli-test-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_ = os.Setenv("HOME", home)
	code := m.Run()
	_ = os.RemoveAll(home)
	os.Exit(code)
}

// isolate marks a test that must see the isolated environment TestMain set
// up; it fails the test if a PG* variable or another HOME has crept in.
func isolate(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "PG") {
			t.Fatalf("%s is set in the test process; TestMain removes every PG* variable", name)
		}
	}
	if os.Getenv("HOME") == realHome {
		t.Fatalf("HOME is the developer's; TestMain points it at an empty directory")
	}
}

// envOf is an env func over a fixed map.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

var noEnv = envOf(nil)

type result struct {
	code           int
	stdout, stderr string
}

func (r result) all() string { return r.stdout + r.stderr }

func runCLI(t *testing.T, env func(string) (string, bool), args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut, env)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// checkJSON runs check --json on one target and decodes its report.
func checkJSON(t *testing.T, env func(string) (string, bool), args ...string) (checkReport, result) {
	t.Helper()
	out, res := checkOutputJSON(t, env, args...)
	require.Len(t, out.Targets, 1)
	require.Equal(t, out.ExitCode, out.Targets[0].ExitCode, "one target: its exit code is the command's")
	return *out.Targets[0], res
}

// checkOutputJSON runs check --json and decodes the whole document.
func checkOutputJSON(t *testing.T, env func(string) (string, bool), args ...string) (checkOutput, result) {
	t.Helper()
	res := runCLI(t, env, append([]string{"check", "--json"}, args...)...)
	var out checkOutput
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &out), "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	require.Equal(t, res.code, out.ExitCode, "the JSON exit_code is the process's")
	require.Equal(t, verdicts[out.ExitCode], out.Verdict)
	return out, res
}

// finding returns the findings of one check, failing t when there is none.
func findingsOf(t *testing.T, r checkReport, check string) []finding {
	t.Helper()
	var out []finding
	for _, f := range r.Findings {
		if f.Check == check {
			out = append(out, f)
		}
	}
	require.NotEmpty(t, out, "no finding for check %q in %+v", check, r.Findings)
	return out
}

// stageResults maps each stage to its result.
func stageResults(r checkReport) map[string]string {
	out := map[string]string{}
	for _, s := range r.Stages {
		out[s.Name] = s.Result
	}
	return out
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// assertOptionsNameFlags fails when out names a Builder option the command
// has a flag for without naming that flag with it: a command-line user must
// be able to act on every hint with the command's own flags.
func assertOptionsNameFlags(t *testing.T, out string) {
	t.Helper()
	for option, flag := range builderFlags {
		named := regexp.MustCompile(`\b`+option+`\b`).FindAllStringIndex(out, -1)
		withFlag := regexp.MustCompile(`Builder\.`+option+`( \(|; )pgsecure check `+regexp.QuoteMeta(flag)+`\b`).FindAllStringIndex(out, -1)
		assert.Equal(t, len(named), len(withFlag), "every mention of %s names %s with it: %s", option, flag, out)
	}
}
