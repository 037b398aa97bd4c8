package vaultit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	credAppRole "github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/logical/database"
	"github.com/hashicorp/vault/helper/testhelpers/corehelpers"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/plugins/database/postgresql"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
	"github.com/hashicorp/vault/vault/plugincatalog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	vaultsrc "github.com/pgsecure/pgsecure/secrets/vault"
)

// env is a real Vault server (TLS, one core, in process) and, after
// withPostgres, a real PostgreSQL server managed by Vault's database engine.
type env struct {
	cluster *vault.TestCluster
	root    *api.Client // root token, verifies TLS with the cluster's CA
	addr    string      // https://127.0.0.1:PORT
	caFile  string      // the CA that signed Vault's certificate

	pg   *testutil.Postgres
	pki  *testutil.PKI
	user string // Vault's PostgreSQL superuser
}

// registry is the test cluster's builtin plugin registry with the real
// PostgreSQL database plugin in place of the mock's placeholder.
type registry struct{ plugincatalog.BuiltinRegistry }

func (r registry) Get(name string, t consts.PluginType) (func() (interface{}, error), bool) {
	if name == "postgresql-database-plugin" && t == consts.PluginTypeDatabase {
		return postgresql.New, true
	}
	return r.BuiltinRegistry.Get(name, t)
}

func clearVaultEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"VAULT_ADDR", "VAULT_CACERT", "VAULT_CAPATH", "VAULT_SKIP_VERIFY",
		"VAULT_AGENT_ADDR", "VAULT_TOKEN", "VAULT_NAMESPACE", "VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"} {
		t.Setenv(k, "")
	}
}

// startVault starts an unsealed Vault with the database engine at
// database/ and KV version 2 at secret/.
func startVault(t *testing.T) *env {
	t.Helper()
	clearVaultEnv(t)
	cluster := vault.NewTestCluster(t, &vault.CoreConfig{
		LogicalBackends:    map[string]logical.Factory{"database": database.Factory},
		CredentialBackends: map[string]logical.Factory{"approle": credAppRole.Factory},
		BuiltinRegistry:    registry{corehelpers.NewMockBuiltinRegistry()},
	}, &vault.TestClusterOptions{
		HandlerFunc: vaulthttp.Handler,
		NumCores:    1,
		Logger:      hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: os.Stderr}),
	})
	cluster.Start()
	t.Cleanup(cluster.Cleanup)
	core := cluster.Cores[0]
	vault.TestWaitActive(t, core.Core)

	e := &env{cluster: cluster, root: core.Client, addr: core.Client.Address(), caFile: cluster.CACertPEMFile}
	require.NoError(t, e.root.Sys().Mount("database", &api.MountInput{Type: "database"}))
	require.NoError(t, e.root.Sys().Unmount("secret")) // the test cluster mounts KV version 1 there
	require.NoError(t, e.root.Sys().Mount("secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
	return e
}

// name is what a source reading path on this server is named (its URI).
func (e *env) name(path string) string {
	return "vault://" + strings.TrimPrefix(e.addr, "https://") + "/" + path
}

// client returns a pgsecure Vault client that logs in with the root token.
func (e *env) client(t *testing.T) *vaultsrc.Client {
	t.Helper()
	c, err := vaultsrc.NewClient(e.addr, e.caFile, vaultsrc.TokenAuth(e.root.Token()))
	require.NoError(t, err)
	return c
}

// putKV writes a KV v2 secret, retrying while the new mount upgrades.
func (e *env) putKV(t *testing.T, path string, data map[string]any) int {
	t.Helper()
	var (
		s   *api.KVSecret
		err error
	)
	for range 50 {
		if s, err = e.root.KVv2("secret").Put(context.Background(), path, data); err == nil {
			return s.VersionMetadata.Version
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, err)
	return 0
}

// withPostgres starts PostgreSQL with a certificate for 127.0.0.1 from a
// test CA and configures database/config/pg so that Vault's PostgreSQL plugin
// connects to it with sslmode=verify-full against that CA.
func (e *env) withPostgres(t *testing.T) *env {
	t.Helper()
	e.pki = testutil.NewPKI(t)
	e.pg = e.pki.StartPostgres(t, testutil.PGOptions{})
	e.user = "vault_admin"
	password := "admin-" + randomSuffix(t)
	e.pg.CreateRole(t, e.user, password)
	e.pg.Exec(t, "ALTER ROLE vault_admin SUPERUSER")

	conn := fmt.Sprintf("postgresql://{{username}}:{{password}}@%s/postgres?sslmode=verify-full&sslrootcert=%s",
		e.pg.Addr(), url.QueryEscape(e.pki.CAFile))
	_, err := e.root.Logical().Write("database/config/pg", map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"connection_url": conn,
		"username":       e.user,
		"password":       password,
		"allowed_roles":  "*",
	})
	require.NoError(t, err)
	return e
}

// dynamicRole creates database/roles/<name> issuing LOGIN roles.
func (e *env) dynamicRole(t *testing.T, name, ttl, maxTTL string) {
	t.Helper()
	_, err := e.root.Logical().Write("database/roles/"+name, map[string]any{
		"db_name": "pg",
		"creation_statements": []string{
			`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		},
		"default_ttl": ttl,
		"max_ttl":     maxTTL,
	})
	require.NoError(t, err)
}

// staticRole creates PostgreSQL role name and the Vault static role of that
// name, rotated every period.
func (e *env) staticRole(t *testing.T, name, period string) {
	t.Helper()
	e.pg.CreateRole(t, name, "initial-"+randomSuffix(t))
	_, err := e.root.Logical().Write("database/static-roles/"+name, map[string]any{
		"db_name": "pg", "username": name, "rotation_period": period,
	})
	require.NoError(t, err)
}

// connString returns a verify-full connection string for the test server.
func (e *env) connString(user, password string) string {
	return e.pg.URL(user, password, "postgres") + "?sslmode=verify-full&sslrootcert=" + url.QueryEscape(e.pki.CAFile)
}

// login connects with creds over verified TLS and returns current_user.
func (e *env) login(ctx context.Context, creds secrets.Credentials) (string, error) {
	conn, err := pgx.Connect(ctx, e.connString(creds.User, creds.Password.Reveal()))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var user string
	var ssl bool
	err = conn.QueryRow(ctx, "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&user, &ssl)
	if err == nil && !ssl {
		err = errors.New("connection is not encrypted")
	}
	return user, err
}

// requireRejected asserts err is PostgreSQL's SQLSTATE 28P01
// (invalid_password), which is also what a dropped role gets.
func requireRejected(t *testing.T, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "28P01", pgErr.Code)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return fmt.Sprintf("%x", b)
}

// source creates the dynamic role (see dynamicRole) and returns a Database
// source for it with a client logged in as root; it is closed when t ends.
func (e *env) source(t *testing.T, role, ttl, maxTTL string, opts ...vaultsrc.Option) *vaultsrc.Source {
	t.Helper()
	e.dynamicRole(t, role, ttl, maxTTL)
	src, err := vaultsrc.Database(e.client(t), "database", role, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return src
}

// poll calls cond every step until it returns true or within has passed,
// and reports whether it did.
func poll(within, step time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(step) {
		if cond() {
			return true
		}
	}
	return false
}
