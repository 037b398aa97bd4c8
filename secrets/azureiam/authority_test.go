package azureiam

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
)

const (
	tenantID     = "11111111-2222-3333-4444-555555555555"
	clientID     = "66666666-7777-8888-9999-000000000000"
	clientSecret = "test-client-secret-never-printed"
)

// entraAuthority is a test double for the Microsoft Entra ID authority
// (login.microsoftonline.com) on loopback TLS: it serves the tenant's OpenID
// configuration and a token endpoint that grants client credentials only
// for clientID with clientSecret and the OSS RDBMS scope, issuing access
// tokens that live for lifetime. It remembers what it issued, so that the
// PAM check on the database side can accept only its tokens, as Azure's
// server asks Entra ID.
type entraAuthority struct {
	*httptest.Server
	lifetime time.Duration

	mu     sync.Mutex
	issued map[string]time.Time // token -> expiry
	secret string
	grants int
}

func newEntraAuthority(t *testing.T, lifetime time.Duration) *entraAuthority {
	t.Helper()
	a := &entraAuthority{lifetime: lifetime, issued: map[string]time.Time{}, secret: clientSecret}
	a.Server = httptest.NewTLSServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *entraAuthority) serve(w http.ResponseWriter, r *http.Request) {
	base := a.URL + "/" + tenantID
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/v2.0/.well-known/openid-configuration"):
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
			"tenant_region_scope":    "EU",
		})
	case r.Method == http.MethodPost && r.URL.Path == "/"+tenantID+"/oauth2/v2.0/token":
		a.token(w, r)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (a *entraAuthority) token(w http.ResponseWriter, r *http.Request) {
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
	case f.Get("client_id") != clientID || f.Get("client_secret") != a.secret:
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

// check is the database side: a login with a token this authority issued
// and that has not expired.
func (a *entraAuthority) check(_ string, token string) error {
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

// revoke changes the client secret: the old one is refused from now on.
func (a *entraAuthority) revoke() {
	a.mu.Lock()
	a.secret = "rotated-" + clientSecret
	a.mu.Unlock()
}
