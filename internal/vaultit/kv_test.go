package vaultit

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/secrets"
	vaultsrc "github.com/pgsecure/pgsecure/secrets/vault"
)

func TestKVReadsFieldsAndVersion(t *testing.T) {
	e := startVault(t)
	ctx := context.Background()
	c := e.client(t)

	e.putKV(t, "apps/db", map[string]any{"username": "app", "password": "pw-one"})
	src, err := vaultsrc.KV(c, "secret", "apps/db")
	require.NoError(t, err)
	creds, err := src.Credentials(ctx)
	require.NoError(t, err)
	assert.Equal(t, "app", creds.User)
	assert.Equal(t, "pw-one", creds.Password.Reveal())
	assert.Equal(t, "1", creds.Version)
	assert.Equal(t, e.name("secret/data/apps/db"), creds.Source)
	assert.True(t, creds.Expires.IsZero())

	e.putKV(t, "apps/db", map[string]any{"username": "app", "password": "pw-two"})
	creds, err = src.Credentials(ctx)
	require.NoError(t, err)
	assert.Equal(t, "pw-two", creds.Password.Reveal(), "every call reads the latest version")
	assert.Equal(t, "2", creds.Version)
}

func TestKVCustomFields(t *testing.T) {
	e := startVault(t)
	e.putKV(t, "custom", map[string]any{
		"login": "svc", "secret": "pw", "server": "db.internal", "pgport": "5433", "db": "orders",
	})
	src, err := vaultsrc.KV(e.client(t), "secret", "custom",
		vaultsrc.WithUserField("login"), vaultsrc.WithPasswordField("secret"),
		vaultsrc.WithHostField("server"), vaultsrc.WithPortField("pgport"), vaultsrc.WithDatabaseField("db"))
	require.NoError(t, err)
	creds, err := src.Credentials(context.Background())
	require.NoError(t, err)
	assert.Equal(t, secrets.Credentials{
		User: "svc", Password: secrets.NewSecret("pw"), Host: "db.internal", Port: 5433, Database: "orders",
		Version: "1", Source: e.name("secret/data/custom"),
	}, creds)

	// A JSON number is accepted for the port too.
	e.putKV(t, "custom", map[string]any{"login": "svc", "secret": "pw", "pgport": 6432})
	creds, err = src.Credentials(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint16(6432), creds.Port)
	assert.Empty(t, creds.Host, "an absent optional field stays empty")
}

func TestKVErrors(t *testing.T) {
	e := startVault(t)
	ctx := context.Background()
	c := e.client(t)
	const password = "pw-that-must-not-leak"

	e.putKV(t, "nouser", map[string]any{"user": "app", "password": password})
	src, err := vaultsrc.KV(c, "secret", "nouser")
	require.NoError(t, err)
	_, err = src.Credentials(ctx)
	require.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Contains(t, err.Error(), `field "username" is missing`)
	assert.NotContains(t, err.Error(), password)

	e.putKV(t, "badport", map[string]any{"username": "app", "password": password, "port": "x" + password})
	src, err = vaultsrc.KV(c, "secret", "badport", vaultsrc.WithPortField("port"))
	require.NoError(t, err)
	_, err = src.Credentials(ctx)
	require.ErrorIs(t, err, secrets.ErrInvalid)
	assert.NotContains(t, err.Error(), password)

	src, err = vaultsrc.KV(c, "secret", "missing")
	require.NoError(t, err)
	_, err = src.Credentials(ctx)
	require.ErrorIs(t, err, secrets.ErrNotFound)
	assert.Contains(t, err.Error(), "secret/data/missing")

	e.putKV(t, "deleted", map[string]any{"username": "app", "password": password})
	require.NoError(t, e.root.KVv2("secret").Delete(ctx, "deleted"))
	src, err = vaultsrc.KV(c, "secret", "deleted")
	require.NoError(t, err)
	_, err = src.Credentials(ctx)
	require.ErrorIs(t, err, secrets.ErrNotFound, "a deleted latest version is not found")

	// A token whose policy does not allow the path.
	tok, err := e.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"default"}})
	require.NoError(t, err)
	limited, err := vaultsrc.NewClient(e.addr, e.caFile, vaultsrc.TokenAuth(tok.Auth.ClientToken))
	require.NoError(t, err)
	src, err = vaultsrc.KV(limited, "secret", "deleted")
	require.NoError(t, err)
	_, err = src.Credentials(ctx)
	require.ErrorIs(t, err, secrets.ErrAccessDenied)
	var re *api.ResponseError
	require.ErrorAs(t, err, &re, "errors.As reaches the Vault client's error")
	assert.Equal(t, 403, re.StatusCode)
	assert.NotContains(t, fmtAll(err), tok.Auth.ClientToken)
}
