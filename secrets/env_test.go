package secrets

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnvFromLookup(t *testing.T) {
	vars := map[string]string{"PGUSER": "app", "PGPASSWORD": testSecret, "PGHOST": "/var/run/postgresql",
		"PGPORT": "6432", "PGDATABASE": "appdb", "PGSSLMODE": "disable"}
	c, err := EnvFrom(mapLookup(vars)).Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, Credentials{User: "app", Password: NewSecret(testSecret), Host: "/var/run/postgresql", Port: 6432,
		Database: "appdb", Source: "env"}, c, "a unix socket host is passed through")
}

func TestEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		want error
		says string
	}{
		{"no user", map[string]string{"PGPASSWORD": testSecret}, ErrNotFound, "PGUSER is not set"},
		{"empty user", map[string]string{"PGUSER": "", "PGPASSWORD": testSecret}, ErrNotFound, "PGUSER is not set"},
		{"no password", map[string]string{"PGUSER": "app"}, ErrNotFound, "PGPASSWORD is not set"},
		{"bad port", map[string]string{"PGUSER": "app", "PGPASSWORD": testSecret, "PGPORT": "54x"}, ErrInvalid, "PGPORT"},
		{"port list", map[string]string{"PGUSER": "app", "PGPASSWORD": testSecret, "PGPORT": "5432,5433"}, ErrInvalid, "PGPORT"},
		{"port zero", map[string]string{"PGUSER": "app", "PGPASSWORD": testSecret, "PGPORT": "0"}, ErrInvalid, "PGPORT"},
		{"port too big", map[string]string{"PGUSER": "app", "PGPASSWORD": testSecret, "PGPORT": "65536"}, ErrInvalid, "PGPORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := EnvFrom(mapLookup(tc.vars)).Credentials(t.Context())
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.says)
			assert.Contains(t, err.Error(), "pgsecure: env: ")
			assert.NotContains(t, err.Error(), testSecret)
		})
	}
}

func TestEnvReadsProcessEnvironmentAtEachCall(t *testing.T) {
	t.Setenv("PGUSER", "app")
	t.Setenv("PGPASSWORD", testSecret)
	t.Setenv("PGPORT", "")
	src := Env()
	c, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "app", c.User)
	assert.Equal(t, testSecret, c.Password.Reveal())
	assert.Zero(t, c.Port)

	t.Setenv("PGPASSWORD", testSecret+"-rotated")
	c, err = src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testSecret+"-rotated", c.Password.Reveal())
}

func TestEnvPrefix(t *testing.T) {
	t.Setenv("APP_PGUSER", "prefixed")
	t.Setenv("APP_PGPASSWORD", testSecret)
	t.Setenv("PGUSER", "plain")
	src, err := Open(t.Context(), "env:?prefix=APP_")
	require.NoError(t, err)
	c, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "prefixed", c.User)
	assert.Equal(t, "env:?prefix=APP_", c.Source)

	t.Setenv("APP_PGPASSWORD", "")
	_, err = src.Credentials(t.Context())
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "APP_PGPASSWORD")
}
