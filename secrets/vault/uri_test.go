package vault

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/secrets"
)

// clearVaultEnv keeps the developer's VAULT_* settings out of a test.
func clearVaultEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"VAULT_ADDR", "VAULT_CACERT", "VAULT_CAPATH", "VAULT_SKIP_VERIFY",
		"VAULT_AGENT_ADDR", "VAULT_TOKEN", "VAULT_NAMESPACE", "VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"} {
		t.Setenv(k, "")
	}
}

func openSource(t *testing.T, uri string) *Source {
	t.Helper()
	src, err := secrets.Open(context.Background(), uri)
	require.NoError(t, err)
	require.IsType(t, &Source{}, src)
	return src.(*Source)
}

func TestURIGrammar(t *testing.T) {
	clearVaultEnv(t)
	tests := []struct {
		uri, addr, path, mount, name string
		kind                         kind
		auth                         string
	}{
		{"vault://vault.example.com/database/creds/app", "https://vault.example.com:8200",
			"database/creds/app", "database", "app", kindDatabase, "token(VAULT_TOKEN)"},
		{"vault://vault.example.com:9200/team/db/static-creds/app?auth=approle&role_id=r1&secret_id_file=/s",
			"https://vault.example.com:9200", "team/db/static-creds/app", "team/db", "app", kindStatic, "approle(auth/approle)"},
		{"vault://10.0.0.1:8200/secret/data/apps/db?token_file=/run/token", "https://10.0.0.1:8200",
			"secret/data/apps/db", "secret", "apps/db", kindKV, "token(file /run/token)"},
		{"vault+http://127.0.0.1:8201/kv/data/x/creds/y?auth=kubernetes&role=app&auth_mount=k8s-east",
			"http://127.0.0.1:8201", "kv/data/x/creds/y", "kv", "x/creds/y", kindKV, "kubernetes(auth/k8s-east)"},
		{"vault+http://[::1]:8201/database/creds/app", "http://[::1]:8201",
			"database/creds/app", "database", "app", kindDatabase, "token(VAULT_TOKEN)"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			s := openSource(t, tt.uri)
			assert.Equal(t, tt.addr, s.client.api.Address())
			assert.Equal(t, tt.path, s.path)
			assert.Equal(t, tt.mount, s.mount)
			assert.Equal(t, tt.name, s.secret)
			assert.Equal(t, tt.kind, s.kind)
			assert.Equal(t, tt.auth, s.client.auth.String())
			scheme, _, _ := strings.Cut(tt.uri, "://")
			want := scheme + "://" + strings.TrimPrefix(strings.TrimPrefix(tt.addr, "https://"), "http://") + "/" + tt.path
			assert.Equal(t, want, s.Name(), "named by its URI without query")
			assert.Equal(t, want, secrets.NameOf(s))
		})
	}
}

func TestURIOptions(t *testing.T) {
	clearVaultEnv(t)
	s := openSource(t, "vault://v:8200/secret/data/db?user_field=login&password_field=pw&host_field=h&port_field=p&dbname_field=d")
	assert.Equal(t, fields{user: "login", password: "pw", host: "h", port: "p", database: "d"}, s.cfg.fields)

	s = openSource(t, "vault://v:8200/database/creds/app?revoke_on_close=true")
	assert.True(t, s.cfg.revokeOnClose)

	s = openSource(t, "vault://v:8200/database/creds/app?auth=approle&role_id_file=/r&secret_id_file=/s&namespace=team")
	assert.Equal(t, "/r", s.client.auth.roleIDFile)
	assert.Equal(t, "/s", s.client.auth.secretIDFile)
	assert.Equal(t, "team", s.client.api.Namespace())
}

func TestURIRefused(t *testing.T) {
	clearVaultEnv(t)
	const secret = "hvs.SUPERSECRET"
	tests := map[string]struct{ uri, want string }{
		"token in user-info":      {"vault://" + secret + "@vault:8200/database/creds/app", "user-info"},
		"token param":             {"vault://vault:8200/database/creds/app?token=" + secret, `"token"`},
		"vault_token param":       {"vault://vault:8200/database/creds/app?vault_token=" + secret, `"vault_token"`},
		"secret_id param":         {"vault://vault:8200/database/creds/app?auth=approle&role_id=r&secret_id=" + secret, `"secret_id"`},
		"password param":          {"vault://vault:8200/secret/data/db?password=" + secret, `"password"`},
		"plain http remote":       {"vault+http://vault.example.com:8200/database/creds/app", "loopback"},
		"unknown param":           {"vault://vault:8200/database/creds/app?tls_skip_verify=true", `parameter "tls_skip_verify" is not known`},
		"repeated param":          {"vault://vault:8200/database/creds/app?ca=/a&ca=/b", "2 times"},
		"no host":                 {"vault:///database/creds/app", "no Vault host"},
		"bad path":                {"vault://vault:8200/database/roles/app", "must be <mount>/creds/<role>"},
		"no mount":                {"vault://vault:8200/creds/app", "must be <mount>/creds/<role>"},
		"kv without path":         {"vault://vault:8200/secret/data", "must be"},
		"approle without secret":  {"vault://vault:8200/database/creds/app?auth=approle&role_id=r", "secret_id_file"},
		"approle two role ids":    {"vault://vault:8200/database/creds/app?auth=approle&role_id=r&role_id_file=/r&secret_id_file=/s", "one of role_id"},
		"kubernetes without role": {"vault://vault:8200/database/creds/app?auth=kubernetes", "role="},
		"unknown auth":            {"vault://vault:8200/database/creds/app?auth=userpass", "not one of"},
		"param of other auth":     {"vault://vault:8200/database/creds/app?role=x", `"role" does not apply`},
		"field option on creds":   {"vault://vault:8200/database/creds/app?user_field=u", "only to KV"},
		"revoke on KV":            {"vault://vault:8200/secret/data/db?revoke_on_close=true", "only to Database"},
		"bad boolean":             {"vault://vault:8200/database/creds/app?revoke_on_close=yes", "not a boolean"},
		"empty field":             {"vault://vault:8200/secret/data/db?user_field=", "must not be empty"},
		"fragment":                {"vault://vault:8200/database/creds/app#x", "fragment"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := secrets.Open(context.Background(), tt.uri)
			require.Error(t, err)
			assert.ErrorIs(t, err, secrets.ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), secret)
		})
	}
}

func TestURIDocumentedParamsAreKnown(t *testing.T) {
	// Every parameter the grammar accepts must appear in the package
	// documentation, and every refused one must be refused.
	doc := readDoc(t)
	for _, p := range uriParams {
		assert.True(t, strings.Contains(doc, p+"="), "parameter %q is not documented", p)
	}
	for _, p := range secretParams {
		assert.Contains(t, doc, p, "refused parameter %q is not documented", p)
	}
}

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	return string(b)
}
