package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// AssertNoKeyMaterial checks that msg holds no line of the PEM body of
// pemBytes (an error or log that echoes a key).
func AssertNoKeyMaterial(t testing.TB, msg string, pemBytes []byte) {
	t.Helper()
	for _, line := range strings.Split(string(pemBytes), "\n") {
		if len(line) >= 16 && !strings.Contains(line, "-----") && !strings.Contains(line, ":") {
			assert.NotContains(t, msg, line[:16])
		}
	}
}

// SkipWithoutTool skips a test that needs an external tool, except in CI,
// where scripts/install-deps.sh installs it and its absence is a failure.
func SkipWithoutTool(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// ReadFixture returns the file name in dir, failing t when it cannot.
func ReadFixture(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

// Passphrase is a key passphrase callback that returns p.
func Passphrase(p string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(p), nil }
}
