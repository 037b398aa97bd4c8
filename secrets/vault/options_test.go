package vault

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/secrets"
)

func testClient(t *testing.T) *Client {
	t.Helper()
	clearVaultEnv(t)
	c, err := NewClient("https://vault:8200", "", TokenAuth("t"))
	require.NoError(t, err)
	return c
}

func TestOptionValidation(t *testing.T) {
	c := testClient(t)
	tests := map[string]func() (*Source, error){
		"nil client":        func() (*Source, error) { return KV(nil, "secret", "db") },
		"empty mount":       func() (*Source, error) { return KV(c, "/", "db") },
		"empty path":        func() (*Source, error) { return KV(c, "secret", "") },
		"role with slash":   func() (*Source, error) { return Database(c, "database", "a/b") },
		"empty field":       func() (*Source, error) { return KV(c, "secret", "db", WithPasswordField("")) },
		"field on database": func() (*Source, error) { return Database(c, "database", "app", WithUserField("u")) },
		"field on static":   func() (*Source, error) { return StaticRole(c, "database", "app", WithHostField("h")) },
		"revoke on KV":      func() (*Source, error) { return KV(c, "secret", "db", WithRevokeOnClose()) },
		"revoke on static":  func() (*Source, error) { return StaticRole(c, "database", "app", WithRevokeOnClose()) },
		"nil logger":        func() (*Source, error) { return Database(c, "database", "app", WithLogger(nil)) },
	}
	for name, build := range tests {
		_, err := build()
		assert.ErrorIs(t, err, secrets.ErrInvalid, name)
	}
}

func TestOptionsApply(t *testing.T) {
	c := testClient(t)
	s, err := KV(c, "/kv/", "/apps/db/", WithUserField("login"), WithPortField("port"), nil)
	require.NoError(t, err)
	assert.Equal(t, fields{user: "login", password: "password", port: "port"}, s.cfg.fields)
	assert.Equal(t, "kv/data/apps/db", s.path)

	l := slog.New(slog.DiscardHandler)
	s, err = Database(c, "database", "app", WithRevokeOnClose(), WithLogger(l))
	require.NoError(t, err)
	assert.True(t, s.cfg.revokeOnClose)
	assert.Same(t, l, s.cfg.logger)
	assert.Equal(t, "vault://vault:8200/database/creds/app", s.String())
}

func TestNumberForms(t *testing.T) {
	s := &Source{path: "kv/data/db"}
	for _, v := range []any{"5433", 5433.0, 5433, int64(5433)} {
		p, err := s.port(map[string]any{"port": v}, "port")
		require.NoError(t, err, "%T", v)
		assert.Equal(t, uint16(5433), p)
	}
	for _, v := range []any{"x", 0, 70000, 54.5, true} {
		_, err := s.port(map[string]any{"port": v}, "port")
		assert.ErrorIs(t, err, secrets.ErrInvalid, "%v", v)
	}
}
