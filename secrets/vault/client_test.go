package vault

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/secrets"
)

func tlsConfigOf(t *testing.T, c *api.Client) *http.Transport {
	t.Helper()
	tr, ok := c.CloneConfig().HttpClient.Transport.(*http.Transport)
	require.True(t, ok)
	return tr
}

func TestNewClientIgnoresSkipVerifyAndAgent(t *testing.T) {
	clearVaultEnv(t)
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_AGENT_ADDR", "http://10.1.2.3:8100")
	c, err := NewClient("https://vault.example.com:8200", "", TokenAuth("t"))
	require.NoError(t, err)
	assert.False(t, tlsConfigOf(t, c.api).TLSClientConfig.InsecureSkipVerify)
	assert.Equal(t, "https://vault.example.com:8200", c.api.Address())
}

func TestNewClientUsesCAFile(t *testing.T) {
	clearVaultEnv(t)
	_, err := NewClient("https://vault:8200", filepath.Join(t.TempDir(), "missing.pem"), TokenAuth("t"))
	require.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Contains(t, err.Error(), "CA file")

	// VAULT_CACERT is the fallback for an empty caFile.
	t.Setenv("VAULT_CACERT", filepath.Join(t.TempDir(), "missing-env.pem"))
	_, err = NewClient("https://vault:8200", "", TokenAuth("t"))
	require.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Contains(t, err.Error(), "missing-env.pem")
}

func TestNewClientIgnoresEnvToken(t *testing.T) {
	clearVaultEnv(t)
	t.Setenv("VAULT_TOKEN", "from-env")
	c, err := NewClient("https://vault:8200", "", AppRoleAuth("r", "s"))
	require.NoError(t, err)
	assert.Empty(t, c.api.Token(), "an AppRole client must not send VAULT_TOKEN before logging in")
}

func TestCheckAddress(t *testing.T) {
	for addr, ok := range map[string]bool{
		"https://vault.example.com:8200": true,
		"http://127.0.0.1:8200":          true,
		"http://localhost:8200":          true,
		"http://[::1]:8200":              true,
		"http://vault.example.com:8200":  false,
		"http://10.0.0.1:8200":           false,
		"unix:///run/vault.sock":         false,
		"vault.example.com:8200":         false,
		"":                               false,
	} {
		err := checkAddress(addr)
		if ok {
			assert.NoError(t, err, addr)
		} else {
			assert.ErrorIs(t, err, secrets.ErrInvalid, addr)
		}
	}
}

func TestWrapRefusesInsecureClient(t *testing.T) {
	clearVaultEnv(t)
	cfg := api.DefaultConfig()
	cfg.Address = "https://vault:8200"
	require.NoError(t, cfg.ConfigureTLS(&api.TLSConfig{Insecure: true}))
	ac, err := api.NewClient(cfg)
	require.NoError(t, err)
	_, err = Wrap(ac, nil)
	require.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Contains(t, err.Error(), "skips TLS verification")

	cfg = api.DefaultConfig()
	cfg.Address = "http://vault.example.com:8200"
	ac, err = api.NewClient(cfg)
	require.NoError(t, err)
	_, err = Wrap(ac, nil)
	require.ErrorIs(t, err, secrets.ErrInvalid)

	_, err = Wrap(nil, nil)
	require.ErrorIs(t, err, secrets.ErrInvalid)
}

func TestAuthValidation(t *testing.T) {
	clearVaultEnv(t)
	for name, a := range map[string]Auth{
		"zero":              {},
		"empty token":       TokenAuth(""),
		"approle no role":   AppRoleAuth("", "s"),
		"approle no secret": AppRoleAuth("r", ""),
		"kubernetes":        KubernetesAuth("", ""),
		"empty mount":       AppRoleAuth("r", "s").AtMount("/"),
	} {
		_, err := NewClient("https://vault:8200", "", a)
		assert.ErrorIs(t, err, secrets.ErrInvalid, name)
	}
	assert.Equal(t, DefaultKubernetesJWTPath, KubernetesAuth("app", "").jwtPath)
	assert.Equal(t, TokenAuth("x"), TokenAuth("x").AtMount("other"), "AtMount must not change token auth")
	assert.Equal(t, "approle(auth/team-approle)", AppRoleAuth("r", "s").AtMount("/team-approle/").String())
}

func TestAuthNeverPrintsSecrets(t *testing.T) {
	const token, secretID = "hvs.TOKEN-123", "SECRET-ID-456"
	for _, a := range []Auth{TokenAuth(token), AppRoleAuth("role", secretID)} {
		for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s %q", a, a, a, a, a)} {
			assert.NotContains(t, s, token)
			assert.NotContains(t, s, secretID)
		}
	}
}

func TestTokenFileIsReadAtLogin(t *testing.T) {
	clearVaultEnv(t)
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("first\n"), 0o600))
	c, err := NewClient("https://vault:8200", "", TokenFileAuth(path))
	require.NoError(t, err)
	require.NoError(t, c.Login(context.Background()))
	assert.Equal(t, "first", c.api.Token())

	require.NoError(t, os.WriteFile(path, []byte("second"), 0o600))
	_, err = c.relogin(context.Background(), c.gen)
	require.NoError(t, err)
	assert.Equal(t, "second", c.api.Token())

	require.NoError(t, os.Remove(path))
	_, err = c.relogin(context.Background(), c.gen)
	require.ErrorIs(t, err, secrets.ErrInvalid)
	assert.Equal(t, "second", c.api.Token(), "a failed login keeps the last token")
}

func TestEnvTokenIsReadAtLogin(t *testing.T) {
	clearVaultEnv(t)
	c, err := NewClient("https://vault:8200", "", EnvTokenAuth())
	require.NoError(t, err)
	require.ErrorIs(t, c.Login(context.Background()), secrets.ErrInvalid)
	t.Setenv("VAULT_TOKEN", "env-token")
	require.NoError(t, c.Login(context.Background()))
	assert.Equal(t, "env-token", c.api.Token())
}

func TestTokenExpiryTriggersLogin(t *testing.T) {
	clearVaultEnv(t)
	now := time.Unix(1_000_000, 0)
	c, err := NewClient("https://vault:8200", "", EnvTokenAuth())
	require.NoError(t, err)
	c.now = func() time.Time { return now }
	t.Setenv("VAULT_TOKEN", "one")
	require.NoError(t, c.Login(context.Background()))
	// Pretend the login granted a 100 s token.
	c.mu.Lock()
	c.ttl, c.expires = 100*time.Second, now.Add(100*time.Second)
	c.mu.Unlock()

	t.Setenv("VAULT_TOKEN", "two")
	now = now.Add(89 * time.Second)
	require.NoError(t, c.Login(context.Background()))
	assert.Equal(t, "one", c.api.Token(), "a token with more than a tenth of its lease left is kept")

	now = now.Add(2 * time.Second)
	require.NoError(t, c.Login(context.Background()))
	assert.Equal(t, "two", c.api.Token(), "a token within a tenth of its end is replaced")
}

func TestUnreachableIsUnavailable(t *testing.T) {
	clearVaultEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	c, err := NewClient("http://"+addr, "", TokenAuth("hvs.unreachable-token"))
	require.NoError(t, err)
	c.api.SetMaxRetries(0)
	src, err := KV(c, "secret", "db")
	require.NoError(t, err)
	_, err = src.Credentials(context.Background())
	require.ErrorIs(t, err, secrets.ErrUnavailable)
	assert.NotContains(t, err.Error(), "hvs.unreachable-token")
	var e *secrets.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "read secret/data/db", e.Op)
	assert.Equal(t, "vault+http://"+addr+"/secret/data/db", e.Source, "named by its URI")
}

// TestLocalProblemsNameWhatIsMissing is issue 11 #7: an unset VAULT_TOKEN or
// an unreadable token file is a configuration problem (secrets.ErrInvalid)
// that says what is missing and names the source by its URI, not "secret is
// malformed" or "Vault unavailable".
func TestLocalProblemsNameWhatIsMissing(t *testing.T) {
	clearVaultEnv(t)
	missing := filepath.Join(t.TempDir(), "no-token")
	for name, tc := range map[string]struct {
		auth Auth
		want string
	}{
		"unset VAULT_TOKEN":    {EnvTokenAuth(), "VAULT_TOKEN is not set (or empty): set it"},
		"missing token file":   {TokenFileAuth(missing), "cannot read the Vault token file " + missing + ": check token_file"},
		"missing role ID file": {AppRoleFileAuth(missing, missing), "cannot read the role ID file " + missing},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := NewClient("https://127.0.0.1:1", "", tc.auth)
			require.NoError(t, err)
			src, err := Database(c, "database", "app")
			require.NoError(t, err)
			_, err = src.Credentials(context.Background())
			require.ErrorIs(t, err, secrets.ErrInvalid)
			assert.NotErrorIs(t, err, secrets.ErrUnavailable, "a local file problem is not a Vault outage")
			assert.Contains(t, err.Error(), "pgsecure: vault://127.0.0.1:1/database/creds/app: login: ")
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "malformed")
		})
	}
}
