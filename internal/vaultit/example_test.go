package vaultit

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVaultExample runs examples/vault as a user would (go run, token and CA
// in the environment) against the in-process Vault issuing real roles on a
// real PostgreSQL, and checks that revoke_on_close dropped the role.
func TestVaultExample(t *testing.T) {
	e := startVault(t).withPostgres(t)
	e.dynamicRole(t, "app", "1h", "2h")
	u, err := url.Parse(e.addr)
	require.NoError(t, err)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./examples/vault",
		"-secret", "vault://"+u.Host+"/database/creds/app?revoke_on_close=true",
		"-dsn", e.pg.URL("", "", "postgres"),
		"-ca", e.pki.CAFile)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VAULT_TOKEN="+e.root.Token(), "VAULT_CACERT="+e.caFile, "VAULT_ADDR=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	s := string(out)
	assert.Contains(t, s, "pg_stat_ssl ssl=true")
	assert.Contains(t, s, "lease expires")
	assert.NotContains(t, s, e.root.Token())

	m := regexp.MustCompile(`connected as (\S+)`).FindStringSubmatch(s)
	require.Len(t, m, 2, "%s", s)
	admin, err := e.pg.Admin(ctx)
	require.NoError(t, err)
	defer admin.Close(ctx)
	var n int
	require.NoError(t, admin.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", m[1]).Scan(&n))
	assert.Zero(t, n, "revoking the lease on exit dropped the role %s", m[1])
}
