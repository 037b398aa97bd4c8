package vaultit

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/secrets"
)

// uri returns vault://<host:port>/<path>?<query> for the test server.
func (e *env) uri(path string, query url.Values) string {
	u := url.URL{Scheme: "vault", Host: strings.TrimPrefix(e.addr, "https://"), Path: "/" + path}
	u.RawQuery = query.Encode()
	return u.String()
}

func TestOpenURIAppRoleDatabase(t *testing.T) {
	e := startVault(t).withPostgres(t)
	e.dynamicRole(t, "app", "1h", "2h")
	roleID, secretID := e.appRole(t, "app", "1h")
	ctx := context.Background()

	src, err := secrets.Open(ctx, e.uri("database/creds/app", url.Values{
		"ca": {e.caFile}, "auth": {"approle"},
		"role_id_file": {writeFile(t, "role-id", roleID)}, "secret_id_file": {writeFile(t, "secret-id", secretID)},
		"revoke_on_close": {"true"},
	}))
	require.NoError(t, err)
	creds, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.Equal(t, e.name("database/creds/app"), creds.Source)
	_, err = e.login(ctx, creds)
	require.NoError(t, err)

	closer, ok := src.(secrets.Closer)
	require.True(t, ok)
	require.NoError(t, closer.Close(ctx))
	_, err = e.login(ctx, creds)
	requireRejected(t, err)
}

func TestOpenURIKVWithTokenFile(t *testing.T) {
	e := startVault(t)
	e.putKV(t, "apps/db", map[string]any{"login": "app", "pw": "secret-pw", "port": "5433"})
	src, err := secrets.Open(context.Background(), e.uri("secret/data/apps/db", url.Values{
		"ca": {e.caFile}, "token_file": {writeFile(t, "token", e.root.Token()+"\n")},
		"user_field": {"login"}, "password_field": {"pw"}, "port_field": {"port"},
	}))
	require.NoError(t, err)
	creds, err := src.Credentials(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "app", creds.User)
	assert.Equal(t, "secret-pw", creds.Password.Reveal())
	assert.Equal(t, uint16(5433), creds.Port)
}

func TestOpenURIStaticRoleWithEnvToken(t *testing.T) {
	e := startVault(t).withPostgres(t)
	e.staticRole(t, "static_app", "1h")
	t.Setenv("VAULT_TOKEN", e.root.Token())
	t.Setenv("VAULT_CACERT", e.caFile)

	src, err := secrets.Open(context.Background(), e.uri("database/static-creds/static_app", nil))
	require.NoError(t, err)
	creds, err := src.Credentials(context.Background())
	require.NoError(t, err)
	user, err := e.login(context.Background(), creds)
	require.NoError(t, err)
	assert.Equal(t, "static_app", user)
}

func TestOpenURIRefusesTokens(t *testing.T) {
	e := startVault(t)
	token := e.root.Token()
	for _, uri := range []string{
		"vault://" + token + "@" + strings.TrimPrefix(e.addr, "https://") + "/secret/data/db",
		e.uri("secret/data/db", url.Values{"token": {token}}),
	} {
		_, err := secrets.Open(context.Background(), uri)
		require.ErrorIs(t, err, secrets.ErrInvalid)
		assert.NotContains(t, fmtAll(err), token)
	}
}
