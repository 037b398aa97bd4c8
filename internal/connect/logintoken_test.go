package connect

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"

	"github.com/pgsecure/pgsecure/verify"
)

// tokenCreds is the credential source's side for these tests: it says
// whether the password is a login token.
type tokenCreds struct{ token bool }

func (tokenCreds) Rejected(context.Context, string, string, string) (Login, Retry) {
	return Login{}, RetryNone
}
func (tokenCreds) Candidates(context.Context, string, string) []Login { return nil }
func (tokenCreds) Retrying(string, string)                            {}
func (tokenCreds) Name() string                                       { return "rdsiam://app@db.example.com:5432" }
func (tokenCreds) Expiry(string, string) time.Time                    { return time.Time{} }
func (c tokenCreds) LoginToken(string, string) (string, bool) {
	return "rdsiam://app@db.example.com:5432", c.token
}

type nopObserver struct{}

func (nopObserver) Verified(context.Context, verify.Report, Timings) {}
func (nopObserver) Refused(context.Context, Refusal)                 {}
func (nopObserver) LoginFailed(context.Context, LoginFailure)        {}

func authRequest(code uint32) []byte { return binary.BigEndian.AppendUint32(nil, code) }

// TestCleartextOnlyForLoginTokenOverVerifiedTLS: the SCRAM-only policy
// answers a cleartext-password request only when the password is a login
// token and the attempt's TLS handshake was verified; md5 and trust stay
// refused even for a token.
func TestCleartextOnlyForLoginTokenOverVerifiedTLS(t *testing.T) {
	for _, tc := range []struct {
		name     string
		token    bool
		verified bool
		code     uint32
		allowed  bool
	}{
		{"token over verified TLS", true, true, 3, true},
		{"token before verification", true, false, 3, false},
		{"password over verified TLS", false, true, 3, false},
		{"md5 with a token", true, true, 5, false},
		{"trust with a token", true, true, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Policy{Auth: SCRAMOnly(), Credentials: tokenCreds{tc.token}, Observer: nopObserver{}}
			a := &attempt{host: "db.example.com", verified: tc.verified}
			w := newAuthWatch(p, &pgconn.Config{User: "app", Password: "token"}, a)
			err := w.authRequest(authRequest(tc.code))
			if tc.allowed {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrInsecureAuth)
		})
	}
}
