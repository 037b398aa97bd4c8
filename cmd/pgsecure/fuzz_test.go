package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/libpq"
)

// FuzzCheckPrintsNoSecret runs check's main logic (run) in-process on a DSN
// that holds a password (URL user information, raw or encoded; URL query;
// keyword value, quoted or escaped; or PGPASSWORD) followed by any further
// text, and requires: --json prints one valid JSON document, and neither it,
// the table, nor stderr holds the password in any spelling (it is wrapped in
// distinctive text so that it cannot appear by chance; a bare short
// PGPASSWORD is checked for valid JSON only). Only DSNs that
// name 127.0.0.1 port 1 (nothing listens there) and no file are run, so the
// target stays on this machine and fails fast.
func FuzzCheckPrintsNoSecret(f *testing.F) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "PG") {
			f.Setenv(name, "")
		}
	}
	f.Setenv("HOME", f.TempDir())
	ca, err := certgen.NewCA("fuzz CA", certgen.ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	caFile := filepath.Join(f.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		f.Fatal(err)
	}
	for form := range uint8(8) {
		for _, pw := range []string{"2", "2024#Tail", "pa?ss", "it's a \\ b", "a@b/c%2", "x&sslmode=disable"} {
			for _, extra := range []string{"", "sslmode=require", "sslpassword=k&connect_timeout=2", "gssencmode=require", "%zz", " host=127.0.0.1"} {
				f.Add(form, pw, extra)
			}
		}
	}
	f.Fuzz(func(t *testing.T, form uint8, pw, extra string) {
		secret := "Pw9" + pw + "Zq7" // distinctive: it cannot appear by chance
		if strings.Contains(extra, secret) {
			t.Skip("the extra text holds the password itself")
		}
		dsn, env := fuzzDSN(form, secret, extra)
		if settings, err := libpq.Parse(dsn); err == nil && !offline(settings) {
			t.Skip("names another host, port or a file")
		}
		if env != nil {
			// Any password, however short, leaves --json valid JSON.
			res := runCLI(t, envOf(map[string]string{"PGPASSWORD": pw}), "check", "--json", "--ca", caFile, "--timeout", "5s", "--probe-timeout", "2s", dsn)
			if !json.Valid([]byte(res.stdout)) {
				t.Fatalf("--json with PGPASSWORD=%q printed invalid JSON: %s", pw, res.stdout)
			}
		}
		for _, args := range [][]string{
			{"check", "--json", "--ca", caFile, "--timeout", "5s", "--probe-timeout", "2s", dsn},
			{"check", "--ca", caFile, "--timeout", "5s", "--probe-timeout", "2s", dsn},
		} {
			res := runCLI(t, envOf(env), args...)
			for _, form := range spellings(secret) {
				if strings.Contains(res.stdout, form) || strings.Contains(res.stderr, form) {
					t.Fatalf("%v printed the password (as %q):\nstdout: %s\nstderr: %s", args[:2], form, res.stdout, res.stderr)
				}
			}
			if args[1] != "--json" {
				continue
			}
			var doc any
			if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
				t.Fatalf("--json printed invalid JSON (%v): %s", err, res.stdout)
			}
			walkStrings(doc, func(s string) {
				if strings.Contains(s, secret) {
					t.Fatalf("a JSON string holds the password: %q", s)
				}
			})
		}
	})
}

// fuzzDSN writes secret into a DSN in the way form picks, then extra.
func fuzzDSN(form uint8, secret, extra string) (dsn string, env map[string]string) {
	enc := strings.ReplaceAll(url.QueryEscape(secret), "+", "%20")
	kv := strings.NewReplacer(`\`, `\\`, " ", `\ `, "'", `\'`).Replace(secret)
	switch form % 8 {
	case 0:
		return "postgres://app:" + secret + "@127.0.0.1:1/db?" + extra, nil
	case 1:
		return "postgres://app:" + enc + "@127.0.0.1:1/db?" + extra, nil
	case 2:
		return "postgres://app@127.0.0.1:1/db?password=" + enc + "&" + extra, nil
	case 3:
		return "postgresql://app@127.0.0.1:1/db?sslpassword=" + enc + "&" + extra, nil
	case 4:
		return "host=127.0.0.1 port=1 user=app password=" + libpq.QuoteValue(secret) + " " + extra, nil
	case 5:
		return "host=127.0.0.1 port=1 user=app sslpassword=" + kv + " " + extra, nil
	case 6:
		return "host=127.0.0.1 port=1 " + extra, map[string]string{"PGPASSWORD": secret}
	default:
		return "postgres://app@127.0.0.1:1/db?" + extra, map[string]string{"PGPASSWORD": secret}
	}
}

// offline reports whether settings keep check on 127.0.0.1 port 1 and away
// from files.
func offline(settings map[string]string) bool {
	for _, k := range []string{"passfile", "service", "servicefile", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslcrldir", "sslkeylogfile"} {
		if _, ok := settings[k]; ok {
			return false
		}
	}
	all := func(key string, allowed ...string) bool {
		v, ok := settings[key]
		if !ok {
			return key != "host" && key != "port" // these must be given
		}
		for _, e := range strings.Split(v, ",") {
			if !slices.Contains(allowed, e) {
				return false
			}
		}
		return true
	}
	return all("host", "127.0.0.1") && all("port", "1") && all("hostaddr", "127.0.0.1")
}

// walkStrings calls fn on every string in a decoded JSON value.
func walkStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case []any:
		for _, e := range v {
			walkStrings(e, fn)
		}
	case map[string]any:
		for k, e := range v {
			fn(k)
			walkStrings(e, fn)
		}
	}
}
