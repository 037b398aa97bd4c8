package vaultit

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	vaultsrc "github.com/pgsecure/pgsecure/secrets/vault"
)

// appPolicy lets an application read its secrets and manage its leases.
const appPolicy = `
path "secret/data/*"           { capabilities = ["read"] }
path "database/creds/*"        { capabilities = ["read"] }
path "database/static-creds/*" { capabilities = ["read"] }
path "sys/leases/renew"        { capabilities = ["update"] }
path "sys/leases/revoke"       { capabilities = ["update"] }
`

// appRole enables AppRole (once), creates role name with appPolicy and the
// given token TTL, and returns its role ID and a new secret ID.
func (e *env) appRole(t *testing.T, name, tokenTTL string) (roleID, secretID string) {
	t.Helper()
	auths, err := e.root.Sys().ListAuth()
	require.NoError(t, err)
	if _, ok := auths["approle/"]; !ok {
		require.NoError(t, e.root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}))
		require.NoError(t, e.root.Sys().PutPolicy("app", appPolicy))
	}
	_, err = e.root.Logical().Write("auth/approle/role/"+name, map[string]any{
		"token_policies": "app", "token_ttl": tokenTTL, "token_max_ttl": tokenTTL,
	})
	require.NoError(t, err)
	s, err := e.root.Logical().Read("auth/approle/role/" + name + "/role-id")
	require.NoError(t, err)
	roleID = s.Data["role_id"].(string)
	s, err = e.root.Logical().Write("auth/approle/role/"+name+"/secret-id", nil)
	require.NoError(t, err)
	return roleID, s.Data["secret_id"].(string)
}

func TestAppRoleLogin(t *testing.T) {
	e := startVault(t)
	ctx := context.Background()
	e.putKV(t, "db", map[string]any{"username": "app", "password": "pw"})
	roleID, secretID := e.appRole(t, "app", "1h")

	c, err := vaultsrc.NewClient(e.addr, e.caFile,
		vaultsrc.AppRoleFileAuth(writeFile(t, "role-id", roleID+"\n"), writeFile(t, "secret-id", secretID+"\n")))
	require.NoError(t, err)
	src, err := vaultsrc.KV(c, "secret", "db")
	require.NoError(t, err)
	creds, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.Equal(t, "app", creds.User)
	first := c.API().Token()
	require.NotEmpty(t, first)

	// A revoked token is answered with 403: the client logs in again once
	// and the read succeeds.
	require.NoError(t, e.root.Auth().Token().RevokeOrphan(first))
	_, err = src.Credentials(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, first, c.API().Token(), "a new token after re-login")
}

func TestAppRoleTokenExpiryReLogin(t *testing.T) {
	e := startVault(t)
	ctx := context.Background()
	e.putKV(t, "db", map[string]any{"username": "app", "password": "pw"})
	roleID, secretID := e.appRole(t, "short", "3s")

	c, err := vaultsrc.NewClient(e.addr, e.caFile, vaultsrc.AppRoleAuth(roleID, secretID))
	require.NoError(t, err)
	require.NoError(t, c.Login(ctx))
	first := c.API().Token()
	src, err := vaultsrc.KV(c, "secret", "db")
	require.NoError(t, err)

	// Within the last tenth of the token's lease (at least 1 s) the client
	// logs in again before using it.
	time.Sleep(2200 * time.Millisecond)
	_, err = src.Credentials(ctx)
	require.NoError(t, err)
	second := c.API().Token()
	assert.NotEqual(t, first, second, "a new login before the token expires")

	time.Sleep(3500 * time.Millisecond) // past the second token's end
	_, err = src.Credentials(ctx)
	require.NoError(t, err, "the client logs in again after its token expired")
	assert.NotEqual(t, second, c.API().Token())
}

func TestAppRoleWrongSecretID(t *testing.T) {
	e := startVault(t)
	roleID, _ := e.appRole(t, "app", "1h")
	const wrong = "8f7c1f2e-wrong-secret-id-6a9b"

	for name, auth := range map[string]vaultsrc.Auth{
		"string": vaultsrc.AppRoleAuth(roleID, wrong),
		"file":   vaultsrc.AppRoleFileAuth(writeFile(t, "role-id", roleID), writeFile(t, "secret-id", wrong)),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := vaultsrc.NewClient(e.addr, e.caFile, auth)
			require.NoError(t, err)
			src, err := vaultsrc.KV(c, "secret", "db")
			require.NoError(t, err)
			_, err = src.Credentials(context.Background())
			require.ErrorIs(t, err, secrets.ErrAccessDenied)
			assert.NotErrorIs(t, err, secrets.ErrInvalid, "a refused login is not a malformed secret (issue 13 defect 2)")
			var re *api.ResponseError
			require.ErrorAs(t, err, &re)
			assert.Contains(t, err.Error(), e.name("secret/data/db")+": login auth/approle/login: Vault refused the login")
			assert.NotContains(t, err.Error(), wrong)
			assert.NotContains(t, fmtAll(err), wrong)
		})
	}
}

func TestVaultTLSIsVerified(t *testing.T) {
	e := startVault(t)
	other := testutil.NewPKI(t) // a CA that did not sign Vault's certificate
	c, err := vaultsrc.NewClient(e.addr, other.CAFile, vaultsrc.TokenAuth(e.root.Token()))
	require.NoError(t, err)
	src, err := vaultsrc.KV(c, "secret", "db")
	require.NoError(t, err)
	_, err = src.Credentials(context.Background())
	require.Error(t, err)
	var cv *tls.CertificateVerificationError
	require.ErrorAs(t, err, &cv)
	assert.Contains(t, err.Error(), "TLS certificate is not trusted")
	assert.NotContains(t, fmtAll(err), e.root.Token())

	// VAULT_SKIP_VERIFY cannot turn verification off.
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	c, err = vaultsrc.NewClient(e.addr, other.CAFile, vaultsrc.TokenAuth(e.root.Token()))
	require.NoError(t, err)
	src, err = vaultsrc.KV(c, "secret", "db")
	require.NoError(t, err)
	_, err = src.Credentials(context.Background())
	require.ErrorAs(t, err, &cv)
}

func TestVaultUnavailable(t *testing.T) {
	e := startVault(t)
	ctx := context.Background()
	token := e.root.Token()

	// Nothing listens on the port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "https://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	c, err := vaultsrc.NewClient(closed, e.caFile, vaultsrc.TokenAuth(token))
	require.NoError(t, err)
	c.API().SetMaxRetries(0)
	src, err := vaultsrc.Database(c, "database", "app")
	require.NoError(t, err)
	_, err = src.Credentials(ctx)
	require.ErrorIs(t, err, secrets.ErrUnavailable)
	assert.NotContains(t, fmtAll(err), token)

	// A sealed Vault answers 503.
	c = e.client(t)
	c.API().SetMaxRetries(0)
	e.putKV(t, "db", map[string]any{"username": "app", "password": "pw"})
	src, err = vaultsrc.KV(c, "secret", "db")
	require.NoError(t, err)
	_, err = src.Credentials(ctx)
	require.NoError(t, err)
	require.NoError(t, e.root.Sys().Seal())
	_, err = src.Credentials(ctx)
	require.ErrorIs(t, err, secrets.ErrUnavailable)
	var re *api.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 503, re.StatusCode)
	assert.NotContains(t, fmtAll(err), token)
}
