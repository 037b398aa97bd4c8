package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGuideSetup makes the server certificate with the guide's own openssl
// command (self-signed, CN only), runs a real PostgreSQL with it, and
// connects with nothing but the guide's PG* variables.
func TestGuideSetup(t *testing.T) {
	openssl := testutil.RequireTool(t, "openssl", "openssl")
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	out, err := exec.Command(openssl, "req", "-newkey", "rsa:4096", "-nodes", "-keyout", key, "-x509", "-days", "365",
		"-out", crt, "-subj", "/CN=localhost").CombinedOutput()
	require.NoError(t, err, "%s", out)
	certPEM, err := os.ReadFile(crt)
	require.NoError(t, err)
	keyPEM, err := os.ReadFile(key)
	require.NoError(t, err)

	pg := testutil.StartPostgres(t, testutil.PGOptions{ServerCertPEM: certPEM, ServerKeyPEM: keyPEM})
	pg.CreateRole(t, "app", "guide-Password-1")
	for k, v := range map[string]string{
		"PGHOST": "localhost", "PGPORT": strconv.Itoa(pg.Port), "PGUSER": "app", "PGDATABASE": "postgres",
		"PGPASSWORD": "guide-Password-1", "PGSSLROOTCERT": crt, "PGSSLMODE": "verify-full",
	} {
		t.Setenv(k, v)
	}
	t.Setenv("HOME", dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var buf bytes.Buffer
	require.NoError(t, run(ctx, &buf))
	s := buf.String()
	assert.Contains(t, s, "server:      localhost")
	assert.Contains(t, s, "matched by Common Name")
	assert.False(t, strings.Contains(s, "guide-Password-1"))
}
