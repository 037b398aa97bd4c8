package awssm

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/awstest"
	"github.com/pgsecure/pgsecure/secrets"
)

// renderings is everything a caller might print or log about v.
func renderings(v any) string {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v|%+v|%#v|%s|%q|", v, v, v, v, v)
	slog.New(slog.NewJSONHandler(&buf, nil)).Error("x", "value", v)
	slog.New(slog.NewTextHandler(&buf, nil)).Error("x", "value", v)
	return buf.String()
}

func assertNoSecret(t *testing.T, what string, v any, secretValues ...string) {
	t.Helper()
	out := renderings(v)
	for _, s := range secretValues {
		assert.NotContains(t, out, s, what)
	}
}

func TestErrorsNeverContainTheSecret(t *testing.T) {
	srv, cfg := newServer(t)
	leaky := []string{testPassword, testCreds.SecretAccessKey}
	srv.Put("truncated", awstest.Version{ID: "t1", Stages: []string{StageCurrent}, String: `{"username":"app","password":"` + testPassword})
	srv.Put("badport", awstest.Version{ID: "b1", Stages: []string{StageCurrent}, String: `{"username":"app","password":"x","port":"` + testPassword + `"}`})
	srv.Put("plain", awstest.Version{ID: "p1", Stages: []string{StageCurrent}, String: testPassword})
	wrongKey := testCreds
	wrongKey.SecretAccessKey = testCreds.SecretAccessKey + "-wrong"

	cases := map[string]*Source{
		"truncated JSON":   SecretsManager(cfg, "truncated"),
		"bad port":         SecretsManager(cfg, "badport"),
		"plain, no user":   SecretsManager(cfg, "plain"),
		"wrong secret key": SecretsManager(srv.Config(wrongKey), "prod/db"),
		"missing":          SecretsManager(cfg, "nope"),
	}
	for what, src := range cases {
		_, err := fetch(t, src)
		require.Error(t, err, what)
		assertNoSecret(t, what, err, leaky...)
		assert.True(t, strings.HasPrefix(err.Error(), "pgsecure: "+src.Name()+": "), what)
	}

	const numeric = "73914650281937"                                // a secret the SDK will quote
	srv.Garble(`{"VersionId":"v1","SecretString":` + numeric + `}`) // a number where a string belongs
	_, err := fetch(t, SecretsManager(cfg, "prod/db"))
	require.ErrorIs(t, err, secrets.ErrUnavailable)
	var undecodable *smithy.DeserializationError
	require.ErrorAs(t, err, &undecodable)
	require.Contains(t, undecodable.Error(), numeric, "the SDK's own text quotes the body")
	assertNoSecret(t, "undecodable response", err, numeric)

	srv.Fail(3, http.StatusServiceUnavailable, "ServiceUnavailable")
	_, err = fetch(t, SecretsManager(cfg, "prod/db"))
	require.ErrorIs(t, err, secrets.ErrUnavailable)
	assertNoSecret(t, "unavailable", err, leaky...)
}

func TestCredentialsAndSourcesPrintRedacted(t *testing.T) {
	_, cfg := newServer(t)
	sm := SecretsManager(cfg, "prod/db")
	c := mustFetch(t, sm)
	assertNoSecret(t, "secrets manager credentials", c, testPassword)
	assertNoSecret(t, "secrets manager source", sm, testPassword, testCreds.SecretAccessKey)

	iam := RDSIAM(iamConfig(), "db.example.com:5432", "", "app")
	tok := mustFetch(t, iam)
	q, err := url.ParseQuery(tok.Password.Reveal()[strings.IndexByte(tok.Password.Reveal(), '?')+1:])
	require.NoError(t, err)
	sig := q.Get("X-Amz-Signature")
	require.Len(t, sig, 64)
	assertNoSecret(t, "rds iam credentials", tok, sig, "Action=connect")
	assertNoSecret(t, "rds iam source", iam, sig, testCreds.SecretAccessKey)
}
