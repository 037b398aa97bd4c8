package libpq

import (
	"maps"
	"strings"
	"testing"
)

const marker = "[REDACTED]"

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:2024#Tail@h:5432/db":                          "postgres://u:[REDACTED]@h:5432/db",
		"postgres://u:pa?ss@h/db?sslmode=verify-full&sslpassword=k": "postgres://u:[REDACTED]@h/db?sslmode=verify-full&sslpassword=[REDACTED]",
		"postgresql://u@h1,h2:5433,[::1]/d%20b?password=x":          "postgresql://u:[REDACTED]@h1,h2:5433,[::1]/d%20b",
		"postgres://u@h/db?sslmode=verify-full":                     "postgres://u@h/db?sslmode=verify-full",
		`host=h password='it\'s 1' sslpassword=a\ b dbname=db`:      "host=h dbname=db password=[REDACTED] sslpassword=[REDACTED]",
		"host=h user=app": "host=h user=app",
	} {
		got, err := Redact(in, marker)
		if err != nil || got != want {
			t.Errorf("Redact(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, err := Redact("postgres://u:sec ret@h/db", marker); err == nil || got != "" {
		t.Errorf("an unparsable string gave %q, %v; want no text and an error", got, err)
	}
}

// FuzzRedact: Redact's text reads back (Parse) as the input's settings
// with every secret replaced by the marker, so no secret survives, however
// it was written.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"postgres://u:2024#Tail@h:5432/db",
		"postgres://u:pa?ss@h/db?sslmode=verify-full&sslpassword=k&host=a,b&port=1",
		"postgresql://u@h1,h2:5433,[::1]/d%20b?password=x&a%26b=c%3Dd",
		"postgres://:pw@/?port=",
		`host=h password='it\'s 1' sslpassword=a\ b dbname=db oauth_client_secret=s`,
		"password= host=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := Parse(s)
		got, rerr := Redact(s, marker)
		if err != nil {
			if rerr == nil || got != "" {
				t.Fatalf("unparsable input redacted to %q", got)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("Redact failed on a parsable input: %v", rerr)
		}
		for k := range want {
			if IsSecret(k) {
				want[k] = marker
			}
		}
		back, err := Parse(got)
		if err != nil {
			t.Fatalf("Redact's %q does not parse: %v", got, err)
		}
		if want["user"] == "" && !IsURL(got) {
			delete(want, "user")
		}
		if !maps.Equal(back, want) {
			t.Fatalf("Redact's %q reads as\n  %q, want\n  %q", got, back, want)
		}
		if strings.Contains(got, "\x00") {
			t.Fatal("NUL in output")
		}
	})
}
