// Package entratest is a test double for the Microsoft Entra ID authority,
// for the tests of azureiam and its example.
package entratest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// The tenant and client the authority knows, and the client's secret.
const (
	TenantID     = "11111111-2222-3333-4444-555555555555"
	ClientID     = "66666666-7777-8888-9999-000000000000"
	ClientSecret = "test-client-secret-never-printed"
)

// Scope is the only scope the authority grants (azureiam.Scope).
const Scope = "https://ossrdbms-aad.database.windows.net/.default"

// Authority is a test double for the Microsoft Entra ID authority
// (login.microsoftonline.com) on loopback TLS: it serves the tenant's OpenID
// configuration and a token endpoint that grants client credentials only
// for ClientID with ClientSecret and the OSS RDBMS scope, issuing access
// tokens that live for lifetime. It remembers what it issued, so that the
// PAM check on the database side can accept only its tokens, as Azure's
// server asks Entra ID.
type Authority struct {
	*httptest.Server
	lifetime time.Duration

	mu     sync.Mutex
	issued map[string]time.Time // token -> expiry
	secret string
	grants int
}

// NewAuthority starts an authority issuing tokens that live for lifetime;
// it stops when t ends.
func NewAuthority(t testing.TB, lifetime time.Duration) *Authority {
	t.Helper()
	a := &Authority{lifetime: lifetime, issued: map[string]time.Time{}, secret: ClientSecret}
	a.Server = httptest.NewTLSServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *Authority) serve(w http.ResponseWriter, r *http.Request) {
	base := a.URL + "/" + TenantID
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/v2.0/.well-known/openid-configuration"):
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
			"tenant_region_scope":    "EU",
		})
	case r.Method == http.MethodPost && r.URL.Path == "/"+TenantID+"/oauth2/v2.0/token":
		a.token(w, r)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (a *Authority) token(w http.ResponseWriter, r *http.Request) {
	fail := func(code, desc string) {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": desc, "error_codes": []int{7000215}})
	}
	if err := r.ParseForm(); err != nil {
		fail("invalid_request", "bad form")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.grants++
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials":
		fail("unsupported_grant_type", "want client_credentials")
		return
	case f.Get("client_id") != ClientID || f.Get("client_secret") != a.secret:
		fail("invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	case !slices.Contains(strings.Fields(f.Get("scope")), Scope): // MSAL adds openid, offline_access, profile
		fail("invalid_scope", "the token is not for the OSS RDBMS resource")
		return
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	token := "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.test-" + hex.EncodeToString(id[:])
	a.issued[token] = time.Now().Add(a.lifetime)
	secs := int(a.lifetime / time.Second)
	_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": token})
}

// Check is the database side: a login with a token this authority issued
// and that has not expired.
func (a *Authority) Check(_ string, token string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.issued[token]
	switch {
	case !ok:
		return errors.New("unknown token")
	case time.Now().After(exp):
		return errors.New("expired token")
	}
	return nil
}

// Revoke changes the client secret: the old one is refused from now on.
func (a *Authority) Revoke() {
	a.mu.Lock()
	a.secret = "rotated-" + ClientSecret
	a.mu.Unlock()
}

// Credential is a real azidentity client secret credential for ClientID
// whose authority is a (instance discovery disabled, a's TLS certificate
// trusted).
func (a *Authority) Credential(t testing.TB) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(TenantID, ClientID, ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: a.URL + "/", Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}},
			Transport: a.Client(),
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatalf("entratest: %v", err)
	}
	return cred
}
