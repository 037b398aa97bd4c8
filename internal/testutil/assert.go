package testutil

import (
	"os"
	"os/exec"
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

// RequireTool returns the path of a command a test needs. When it is
// missing the test fails under CI=true (scripts/install-deps.sh installs
// it, from debianPackage) and is skipped otherwise.
func RequireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required when CI=true: %v; install with: apt-get install -y %s", name, err, debianPackage)
		}
		t.Skipf("skipping: %s not found: %v", name, err)
	}
	return path
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
