package libpq

import (
	"maps"
	"os"
	"regexp"
	"testing"
	_ "unsafe" // go:linkname, to call pgx's own parser

	_ "github.com/jackc/pgx/v5/pgconn"
)

// pgx's connection-string parser is unexported. These test-only links
// reach it, to compare it with Parse byte for byte. Their signatures are
// those of pgx v5.12; requirePgx512 stops the tests before calling them
// with any other version, whose signatures may differ.

// pgxURLMeta has the layout of pgx v5.12's unexported parseURLMeta.
type pgxURLMeta struct{ impliedEmptyPortList, sawRawSSLKey, sawSSLTrueAlias, sawExplicitSSLModeKey bool }

//go:linkname pgxParseURL github.com/jackc/pgx/v5/pgconn.parseURLSettings
func pgxParseURL(connString string) (map[string]string, pgxURLMeta, error)

//go:linkname pgxParseKeywordValue github.com/jackc/pgx/v5/pgconn.parseKeywordValueSettings
func pgxParseKeywordValue(s string) (map[string]string, error)

// pgxParse is pgx's reading of a connection string, before environment
// variables and defaults.
func pgxParse(t testing.TB, s string) (map[string]string, error) {
	requirePgx512(t)
	if IsURL(s) {
		m, _, err := pgxParseURL(s)
		return m, err
	}
	return pgxParseKeywordValue(s)
}

func requirePgx512(t testing.TB) {
	t.Helper()
	gomod, err := os.ReadFile("../../go.mod") // test binaries carry no dependency versions
	if err != nil {
		t.Fatalf("cannot check the pgx version the links were written for: %v", err)
	}
	if !regexp.MustCompile(`(?m)^\s*github.com/jackc/pgx/v5 v5\.12\.\d+\s*$`).Match(gomod) {
		t.Fatal("go.mod does not require pgx v5.12: re-read pgx's pgconn/parse_url.go and config.go, " +
			"update Parse and the links in this file to match, then this check")
	}
}

// FuzzParseMatchesPgx: for any connection string, Parse accepts exactly
// what pgx accepts and returns exactly pgx's settings (keys and values,
// passwords included); and Render's string, which pgsecure hands to pgx,
// reads back in pgx as those same settings.
func FuzzParseMatchesPgx(f *testing.F) {
	for _, s := range []string{
		"postgres://app:pa?ss@db:5432/app?ssl_min_protocol_version=TLSv1.3&sslrootcert=/ca.crt",
		"postgres://app:pa?ss@db/app?service=x",
		"postgres://u:2024#Tail@host/db",
		"postgresql://u:p%40ss@h1:1,h2,[::1]:3/d%20b?sslmode=disable&sslmode=verify-full&ssl=true",
		"postgres://u:p@ss@h/db?password=x&sslpassword=y",
		"postgres://u:sec ret/db",
		"postgres://h1,h2",
		"postgres:///db?host=%2Ftmp&port=",
		"postgres://[::1/db",
		"postgres://u@h/db?a=b=c",
		"postgres://u@h/db?dbname=x&database=y",
		"host=a port=1 dbname='my db' password='it\\'s' user=",
		"host=a password=\\",
		"password='unterminated",
		"  host = a  sslmode=  verify-full   ",
		"ho st=a",
		"=x",
		"host=a\x00",
		"a=b c='d\\'e\\\\' f=g\\ h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, wantErr := pgxParse(t, s)
		got, err := Parse(s)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("Parse error %v, pgx error %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if !maps.Equal(got, want) {
			t.Fatalf("Parse %q\n  pgx %q", got, want)
		}
		for k := range got {
			if !ValidKey(k) {
				return // pgsecure refuses such keys before rendering
			}
		}
		rendered := Render(got)
		back, err := pgxParse(t, rendered)
		if err != nil {
			t.Fatalf("pgx cannot read Render's %q: %v", rendered, err)
		}
		if got["user"] == "" {
			delete(got, "user") // pgx drops an empty user in keyword/value form
		}
		if !maps.Equal(back, got) {
			t.Fatalf("Render %q\n  pgx reads %q\n  want %q", rendered, back, got)
		}
	})
}
