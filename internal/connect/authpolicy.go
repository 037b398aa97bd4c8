package connect

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/verify"
)

// ErrInsecureAuth is wrapped when the server asks for an authentication
// method the policy does not allow. The root package exports it.
var ErrInsecureAuth = shared.ErrInsecureAuth

var allAuthMethods = []verify.AuthMethod{verify.AuthSCRAM, verify.AuthMD5, verify.AuthPassword, verify.AuthNone, verify.AuthGSS, verify.AuthSSPI, verify.AuthOAuth}

// AuthPolicy is the set of authentication methods a connection may use.
type AuthPolicy struct {
	allowed []verify.AuthMethod
	binding bool // channel_binding=require: SCRAM-SHA-256-PLUS and nothing else
}

// SCRAMOnly is the default policy: scram-sha-256 and nothing else.
func SCRAMOnly() AuthPolicy { return AuthPolicy{allowed: []verify.AuthMethod{verify.AuthSCRAM}} }

// ParseRequireAuth reads libpq's require_auth: a list of methods, or a list
// of negated methods ("!md5,!password").
func ParseRequireAuth(s string) (AuthPolicy, error) {
	parts := strings.Split(s, ",")
	negated := strings.HasPrefix(strings.TrimSpace(parts[0]), "!")
	set := map[verify.AuthMethod]bool{}
	if negated {
		for _, m := range allAuthMethods {
			set[m] = true
		}
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		neg := strings.HasPrefix(p, "!")
		if neg != negated {
			return AuthPolicy{}, errors.New("negated and plain methods cannot be mixed")
		}
		m := verify.AuthMethod(strings.TrimPrefix(p, "!"))
		if !slices.Contains(allAuthMethods, m) {
			return AuthPolicy{}, fmt.Errorf("unknown method %q (known: %s)", m, joinMethods(allAuthMethods))
		}
		set[m] = !negated
	}
	var out AuthPolicy
	for _, m := range allAuthMethods {
		if set[m] {
			out.allowed = append(out.allowed, m)
		}
	}
	if len(out.allowed) == 0 {
		return AuthPolicy{}, errors.New("no method left")
	}
	return out, nil
}

func (p AuthPolicy) String() string {
	return strings.Replace(joinMethods(p.allowed), ", ", ",", -1)
}

func joinMethods(ms []verify.AuthMethod) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

// Allows reports whether method is allowed.
func (p AuthPolicy) Allows(method verify.AuthMethod) bool { return slices.Contains(p.allowed, method) }

// WithChannelBinding returns p requiring channel binding (libpq's
// channel_binding=require): every method but SCRAM is refused, and SCRAM
// only as SCRAM-SHA-256-PLUS.
func (p AuthPolicy) WithChannelBinding() AuthPolicy { p.binding = true; return p }

// ChannelBindingRequired reports whether p requires channel binding.
func (p AuthPolicy) ChannelBindingRequired() bool { return p.binding }

// WeakerThanSCRAM reports whether the policy allows more than scram-sha-256.
func (p AuthPolicy) WeakerThanSCRAM() bool {
	return len(p.allowed) != 1 || p.allowed[0] != verify.AuthSCRAM
}
