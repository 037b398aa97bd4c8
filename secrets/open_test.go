package secrets

import (
	"context"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenEnv(t *testing.T) {
	t.Setenv("PGUSER", "app")
	t.Setenv("PGPASSWORD", testSecret)
	for _, uri := range []string{"env:", "ENV:", "env://"} {
		src, err := Open(t.Context(), uri)
		require.NoError(t, err, uri)
		c, err := src.Credentials(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "app", c.User)
		assert.Equal(t, "env", c.Source)
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/login", "app")
	writeFile(t, dir+"/password", testSecret)
	writeFile(t, dir+"/my db", "appdb")
	for _, uri := range []string{
		"file:" + dir + "?user_file=login&dbname_file=my%20db",
		"file://" + dir + "?user_file=login&dbname_file=my+db",
		"file://localhost" + dir + "?user_file=login&dbname_file=my%20db",
	} {
		src, err := Open(t.Context(), uri)
		require.NoError(t, err, uri)
		c, err := src.Credentials(t.Context())
		require.NoError(t, err, uri)
		assert.Equal(t, "app", c.User)
		assert.Equal(t, "appdb", c.Database)
		assert.Equal(t, "file:"+dir, c.Source)
	}
	path := filepath.Join(dir, "a#b.json")
	writeFile(t, path, `{"username":"app","password":"pw"}`)
	src, err := Open(t.Context(), "file:"+filepath.Join(dir, "a%23b.json"))
	require.NoError(t, err)
	_, err = src.Credentials(t.Context())
	require.NoError(t, err, "percent-encoded path")
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want error
		says string
	}{
		{"env:APP_", ErrInvalid, "takes no path"},
		{"env:?prefix=APP-", ErrInvalid, "may hold only letters"},
		{"env:?user=x", ErrInvalid, `parameter "user" is not known (known: prefix)`},
		{"env:?prefix=A&prefix=B", ErrInvalid, "appears 2 times"},
		{"env:#frag", ErrInvalid, "takes no fragment"},
		{"env://app@", ErrInvalid, "takes no user name"},
		{"file:", ErrInvalid, "needs an absolute path"},
		{"file:relative/db", ErrInvalid, "needs an absolute path"},
		{"file://dbhost/run/secrets", ErrInvalid, `names host "dbhost"`},
		{"file:/run/secrets?user_file=../x", ErrInvalid, "is not a plain file name"},
		{"file:/run/secrets?mode=json", ErrInvalid, "user_file, password_file, host_file, port_file, dbname_file"},
		{"file:/run/secrets?%zz", ErrInvalid, "the query is malformed"},
		{"/run/secrets/db", ErrUnknownScheme, "has no scheme"},
		{"vault://vault:8200/database/creds/app", ErrUnknownScheme,
			`add import _ "github.com/pgsecure/pgsecure/secrets/vault"; registered schemes: `},
		{"awssm://prod/db", ErrUnknownScheme, `import _ "github.com/pgsecure/pgsecure/secrets/awssm"`},
		{"rdsiam://app@db:5432?region=eu-west-1", ErrUnknownScheme, `import _ "github.com/pgsecure/pgsecure/secrets/awssm"`},
		{"gcpiam://?scope=cloudsql", ErrUnknownScheme, `import _ "github.com/pgsecure/pgsecure/secrets/gcpiam"`},
		{"azureiam://?user=app@contoso.com", ErrUnknownScheme, `import _ "github.com/pgsecure/pgsecure/secrets/azureiam"`},
		{"static:", ErrUnknownScheme, "not offered as a URI"},
		{"gopher://x", ErrUnknownScheme, `no secret source is registered for scheme "gopher"`},
		{"vault://app:" + testSecret + "@vault:8200/kv/data/db", ErrInvalid, "carries a password in its user-info"},
		{"rdsiam://app:" + url.QueryEscape(testSecret) + "@db:5432", ErrInvalid, "carries a password"},
		{"awssm://app:" + testSecret + "@", ErrInvalid, "carries a password"},
		{"vault://app:" + testSecret, ErrInvalid, `URI (scheme "vault") is not a valid URI`},
		{"vault://app:%zz" + testSecret + "@h", ErrInvalid, "is not a valid URI"},
		{"::" + testSecret, ErrInvalid, "is not a valid URI"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			src, err := Open(t.Context(), tc.uri)
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, src)
			assert.Contains(t, err.Error(), tc.says)
			assert.NotContains(t, err.Error(), testSecret)
			assert.NotContains(t, err.Error(), url.QueryEscape(testSecret))
		})
	}
}

func TestRegister(t *testing.T) {
	var got *url.URL
	registerForTest(t, "Test-Reg+x", func(_ context.Context, u *url.URL) (Source, error) {
		got = u
		return Static(Credentials{User: u.User.Username(), Password: NewSecret("pw")}), nil
	})
	assert.True(t, slices.IsSorted(Schemes()))
	assert.Subset(t, Schemes(), []string{"env", "file", "test-reg+x"})

	src, err := Open(t.Context(), "TEST-REG+X://app@host/path?a=b")
	require.NoError(t, err)
	assert.Equal(t, "host", got.Host)
	c, err := src.Credentials(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "app", c.User)

	assert.PanicsWithValue(t, `pgsecure/secrets: Register: scheme "test-reg+x" registered twice`,
		func() { Register("test-reg+x", func(context.Context, *url.URL) (Source, error) { return nil, nil }) })
	assert.Panics(t, func() { Register("1abc", func(context.Context, *url.URL) (Source, error) { return nil, nil }) })
	assert.Panics(t, func() { Register("ok-nil", nil) })

	registerForTest(t, "test-nil", func(context.Context, *url.URL) (Source, error) { return nil, nil })
	_, err = Open(t.Context(), "test-nil:x")
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "returned no source")

	_, err = Open(t.Context(), "nope:x")
	assert.Contains(t, err.Error(), "test-reg+x", "the error lists registered schemes")
}

// registerForTest registers a scheme for the duration of the test.
func registerForTest(t *testing.T, scheme string, open Opener) {
	Register(scheme, open)
	t.Cleanup(func() {
		registry.Lock()
		defer registry.Unlock()
		delete(registry.m, strings.ToLower(scheme))
	})
}

// TestOpenSuggestsTheNearestScheme is issue 11 #6: a mistyped scheme gets a
// "did you mean", including for a backend that is not linked.
func TestOpenSuggestsTheNearestScheme(t *testing.T) {
	_, err := Open(t.Context(), "vualt://vault:8200/database/creds/app")
	require.ErrorIs(t, err, ErrUnknownScheme)
	assert.Contains(t, err.Error(), `did you mean "vault"?`)
	_, err = Open(t.Context(), "flie:/run/secrets/db")
	assert.Contains(t, err.Error(), `did you mean "file"?`)
}
