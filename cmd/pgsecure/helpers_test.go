package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// isolate clears the PG* variables of the test process and points HOME at an
// empty directory, so pgx reads nothing of the developer's setup.
func isolate(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "PG") {
			t.Setenv(name, "")
		}
	}
	t.Setenv("HOME", t.TempDir())
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

// checkJSON runs check --json and decodes the report.
func checkJSON(t *testing.T, env func(string) (string, bool), args ...string) (checkReport, result) {
	t.Helper()
	res := runCLI(t, env, append([]string{"check", "--json"}, args...)...)
	var r checkReport
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &r), "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	return r, res
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}
