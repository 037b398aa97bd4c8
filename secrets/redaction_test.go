package secrets

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertRedacted checks that no fmt verb and no debug-level JSON log of v
// contains testSecret.
func assertRedacted(t *testing.T, what string, v any) {
	t.Helper()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		out := fmt.Sprintf(verb, v)
		assert.NotContains(t, out, testSecret, "%s printed with %s: %s", what, verb, out)
	}
	log, buf := logBuffer()
	log.Debug("value", "v", v, "list", []any{v})
	assert.NotContains(t, buf.String(), testSecret, "%s logged: %s", what, buf)
}

func TestRedaction(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/username", "app")
	writeFile(t, dir+"/password", testSecret)
	jsonPath := filepath.Join(dir, "db.json")
	writeFile(t, jsonPath, `{"username":"app","password":"`+testSecret+`"}`)
	log, logs := logBuffer()
	t.Setenv("PGUSER", "app")
	t.Setenv("PGPASSWORD", testSecret)

	clock := newClock()
	static := Static(Credentials{User: "app", Password: NewSecret(testSecret), Expires: clock.Now().Add(time.Minute)})
	cacheOpts := clocked(clock)
	cacheOpts.Logger = log
	cache := NewCache(static, cacheOpts)
	fileOpts := []FileOption{WithLogger(log), WithPasswordFile("password")}
	sources := map[string]Source{
		"env": Env(), "file dir": File(dir, fileOpts...), "file json": File(jsonPath, WithLogger(log)),
		"static": static, "chain": Chain(EnvFrom(mapLookup(nil)), static), "cache": cache,
	}
	for name, src := range sources {
		c, err := src.Credentials(t.Context())
		require.NoError(t, err, name)
		require.Equal(t, testSecret, c.Password.Reveal(), name)
		assertRedacted(t, name+" credentials", c)
		assertRedacted(t, name+" credentials pointer", &c)
		assertRedacted(t, name+" password", c.Password)
		assertRedacted(t, name+" source", src)
	}
	assertRedacted(t, "cache options", cacheOpts)
	assertRedacted(t, "file options", fileOpts)

	// Every error path that has the secret at hand.
	var errs []error
	collect := func(_ Credentials, err error) { errs = append(errs, err) }
	collect(EnvFrom(mapLookup(map[string]string{"PGUSER": "app", "PGPASSWORD": testSecret, "PGPORT": testSecret})).Credentials(t.Context()))
	collect(EnvFrom(mapLookup(map[string]string{"PGPASSWORD": testSecret})).Credentials(t.Context()))
	collect(Static(Credentials{Password: NewSecret(testSecret)}).Credentials(t.Context()))
	for _, doc := range []string{`{"username":"app","password":"` + testSecret + `"`, `{"password":"` + testSecret + `"}`,
		`{"username":"` + testSecret + `","user":"x","password":"` + testSecret + `"}`, `"` + testSecret + `"`,
		`{"username":"app","password":"` + testSecret + `","port":"` + testSecret + `"}`, `{"username":"app","password":` + testSecret + `}`} {
		collect(ParseJSON([]byte(doc)))
		writeFile(t, jsonPath, doc)
		collect(File(jsonPath).Credentials(t.Context()))
	}
	writeFile(t, dir+"/port", testSecret)
	collect(File(dir).Credentials(t.Context()))
	require.NoError(t, os.Remove(dir+"/username"))
	collect(File(dir).Credentials(t.Context()))
	for _, uri := range []string{"vault://app:" + testSecret + "@v/x", "vault://app:" + testSecret, "env:?prefix=" + testSecret,
		"file:/x?user_file=/" + testSecret, "file:/x?" + testSecret + "=1", testSecret + "://x"} {
		_, err := Open(t.Context(), uri)
		errs = append(errs, err)
	}
	collect(Chain(EnvFrom(mapLookup(map[string]string{"PGUSER": "app", "PGPASSWORD": testSecret, "PGPORT": "x"}))).Credentials(t.Context()))
	clock.Advance(time.Hour)
	collect(cache.Credentials(t.Context())) // static returned expired credentials
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	collect(cache.Credentials(ctx))

	for i, err := range errs {
		require.Error(t, err, "error path %d", i)
		assert.NotContains(t, err.Error(), testSecret, "error path %d", i)
		assertRedacted(t, fmt.Sprintf("error %d", i), err)
	}
	assert.NotContains(t, logs.String(), testSecret)
}

// TestRedactionInsideCallersUnexportedFields: fmt cannot call methods on
// unexported fields, so a Secret must not hold its value directly.
func TestRedactionInsideCallersUnexportedFields(t *testing.T) {
	type holder struct {
		creds  Credentials
		secret Secret
	}
	h := holder{creds: Credentials{User: "app", Password: NewSecret(testSecret)}, secret: NewSecret(testSecret)}
	for _, out := range []string{fmt.Sprintf("%v", h), fmt.Sprintf("%+v", h), fmt.Sprintf("%#v", h), fmt.Sprint([]any{h})} {
		if strings.Contains(out, testSecret) {
			t.Fatalf("secret printed through an unexported field: %s", out)
		}
	}
}
