package secrets

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseJSON: ParseJSON never panics, succeeds only with a user and a
// password, and its error never contains the password field's value.
func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"username":"app","password":"s3cr3t!pw","host":"h","port":5432,"dbname":"d"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseJSON(b)
		if err == nil {
			if c.User == "" || c.Password.IsZero() {
				t.Fatalf("accepted credentials without user or password: %v", c)
			}
			return
		}
		var doc struct{ Password json.RawMessage }
		if json.Unmarshal(b, &doc) != nil || len(doc.Password) < 4 {
			return
		}
		var pw string
		if json.Unmarshal(doc.Password, &pw) != nil {
			pw = string(doc.Password) // a number or other non-string value
		}
		// Error texts are fixed phrases, field names and offsets, none of which
		// contain these characters; a password with one is a fair probe.
		if len(pw) >= 4 && strings.ContainsAny(pw, "!#$&*^~`|@") && strings.Contains(err.Error(), pw) {
			t.Fatalf("error echoes the password: %v", err)
		}
	})
}

// probe marks the password in FuzzOpenURI; no error text contains it.
const probe = "Zx7Qk"

// FuzzOpenURI: Open never panics on any string, and its error never contains
// a password placed in the URI's user-info.
func FuzzOpenURI(f *testing.F) {
	f.Add("vault://app:", "secret", "@vault:8200/database/creds/app")
	f.Fuzz(func(t *testing.T, head, pw, tail string) {
		_, _ = Open(t.Context(), head+pw+tail)
		uri := head + probe + pw + tail
		_, err := Open(t.Context(), uri)
		if err == nil {
			return
		}
		u, perr := url.Parse(uri)
		if perr != nil {
			// Only a valid scheme is echoed for an unparsable URI.
			if !strings.Contains(strings.ToLower(strings.SplitN(uri, ":", 2)[0]), strings.ToLower(probe)) &&
				strings.Contains(strings.ToLower(err.Error()), strings.ToLower(probe)) {
				t.Fatalf("error echoes part of an unparsable URI: %v", err)
			}
			return
		}
		if p, ok := u.User.Password(); ok && strings.Contains(p, probe) && strings.Contains(err.Error(), probe) {
			t.Fatalf("error echoes the user-info password: %v", err)
		}
	})
}
