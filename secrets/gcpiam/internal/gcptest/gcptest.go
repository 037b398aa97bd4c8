// Package gcptest is a test double for Google's OAuth 2.0 token endpoint,
// for the tests of gcpiam and its example.
package gcptest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TokenServer is a test double for Google's OAuth 2.0 token endpoint
// (the token_uri of a service account key), on loopback TLS: it accepts the
// JWT-bearer grant only when the assertion is signed by the key's private
// key, names the key's email as issuer, this endpoint as audience and the
// expected scope, and issues access tokens that live for lifetime. It
// remembers what it issued, so that the PAM check on the database side can
// accept only its tokens, as Cloud SQL asks Google.
type TokenServer struct {
	*httptest.Server
	email, keyID string
	key          *rsa.PrivateKey
	scope        string
	lifetime     time.Duration

	mu      sync.Mutex
	issued  map[string]issuedToken
	revoked bool // the key was revoked: every grant fails with invalid_grant
	grants  int
}

type issuedToken struct {
	email, scope string
	expires      time.Time
}

// NewTokenServer starts a token server for the service account email, which
// grants scope and issues tokens living for lifetime; it stops when t ends.
func NewTokenServer(t *testing.T, email, scope string, lifetime time.Duration) *TokenServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &TokenServer{email: email, keyID: "test-key-1", key: key, scope: scope, lifetime: lifetime, issued: map[string]issuedToken{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// KeyJSON is the service account key a program would download, pointing at
// this server.
func (s *TokenServer) KeyJSON(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "proj", "private_key_id": s.keyID,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": s.email, "client_id": "1234567890", "token_uri": s.URL + "/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *TokenServer) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		fail("invalid_request", "bad form")
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		fail("unsupported_grant_type", "want the JWT bearer grant")
		return
	}
	claims, err := s.verifyAssertion(r.PostForm.Get("assertion"))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants++
	switch {
	case err != nil:
		fail("invalid_grant", err.Error())
		return
	case s.revoked:
		fail("invalid_grant", "Invalid JWT Signature.")
		return
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	token := "ya29.test-" + hex.EncodeToString(id[:])
	s.issued[token] = issuedToken{email: claims.Iss, scope: claims.Scope, expires: time.Now().Add(s.lifetime)}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": int(s.lifetime / time.Second)})
}

type jwtClaims struct {
	Iss, Scope, Aud string
	Iat, Exp        int64
}

// verifyAssertion checks the signed JWT as Google does.
func (s *TokenServer) verifyAssertion(assertion string) (jwtClaims, error) {
	var c jwtClaims
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return c, errors.New("not a JWT")
	}
	var header struct{ Alg, Kid string }
	if err := decodeSegment(parts[0], &header); err != nil {
		return c, err
	}
	if header.Alg != "RS256" || header.Kid != s.keyID {
		return c, fmt.Errorf("header alg %q kid %q", header.Alg, header.Kid)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return c, err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return c, errors.New("Invalid JWT Signature.")
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return c, err
	}
	now := time.Now().Unix()
	switch {
	case c.Iss != s.email:
		return c, fmt.Errorf("issuer %q", c.Iss)
	case c.Aud != s.URL+"/token":
		return c, fmt.Errorf("audience %q", c.Aud)
	case c.Scope != s.scope:
		return c, fmt.Errorf("scope %q", c.Scope)
	case c.Iat > now+60 || c.Exp < now || c.Exp-c.Iat > 3600:
		return c, errors.New("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
	}
	return c, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Check is the database side (the PAM script's question): user may log in
// with token when this server issued it for that user's service account
// with the login scope, and it has not expired.
func (s *TokenServer) Check(user, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.issued[token]
	switch {
	case !ok:
		return errors.New("unknown token")
	case time.Now().After(it.expires):
		return errors.New("expired token")
	case strings.TrimSuffix(it.email, ".gserviceaccount.com") != user:
		return fmt.Errorf("token of %s, not %s", it.email, user)
	case it.scope != s.scope:
		return errors.New("token without the login scope")
	}
	return nil
}

// Revoke revokes the key: every later grant fails with invalid_grant, and
// the tokens issued so far stop working.
func (s *TokenServer) Revoke() {
	s.mu.Lock()
	s.revoked = true
	s.issued = map[string]issuedToken{}
	s.mu.Unlock()
}
