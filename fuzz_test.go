package pgsecure_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
)

// fuzzPassword is planted in every fuzzed connection string; no error may
// contain it.
const fuzzPassword = "Fuzz-Planted-Pw-8d31c7"

// FuzzConfigURL feeds "postgres://app:PASSWORD@" + input to Builder.Config.
func FuzzConfigURL(f *testing.F) {
	for _, s := range []string{
		"localhost:5432/db",
		"localhost/db?sslmode=disable",
		"h1:5432,h2:5433/db?target_session_attrs=read-write",
		"%2Ftmp/db",
		"localhost/db?sslrootcert=/nonexistent&sslcert=x",
		"[::1]:5432/db?sslnegotiation=direct&ssl_min_protocol_version=TLSv1.3",
		"localhost/db?password=other&require_auth=md5",
		"x@y:z/%zz",
	} {
		f.Add(s)
	}
	fuzzConfig(f, func(input string) string { return "postgres://app:" + fuzzPassword + "@" + input })
}

// FuzzConfigKeywordValue feeds "password=PASSWORD " + input to
// Builder.Config.
func FuzzConfigKeywordValue(f *testing.F) {
	for _, s := range []string{
		"host=localhost dbname=db",
		"host=/tmp port=5432",
		"host=localhost sslmode=require",
		"host='a b' options='-c x=y' sslsni=0",
		"host=localhost password='unterminated",
		"host=h1,h2 port=1,2 sslrootcert=system",
	} {
		f.Add(s)
	}
	fuzzConfig(f, func(input string) string { return "password=" + fuzzPassword + " " + input })
}

// fuzzConfig checks, for any input: Config does not panic; an error is a
// *ConfigError (wrapping ErrInsecureConfig), starts with "pgsecure" and never
// contains the password; an accepted configuration has pgsecure's TLS
// configuration on every host and no unix-socket host.
func fuzzConfig(f *testing.F, connString func(string) string) {
	ca, err := certgen.NewCA("fuzz CA", certgen.ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input string) {
		if strings.Contains(input, fuzzPassword) {
			t.Skip("the input itself holds the planted password")
		}
		cfg, err := pgsecure.NewBuilder(connString(input)).RootCAPEM(ca.CertPEM).Config(context.Background())
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, fuzzPassword) {
				t.Fatalf("the error contains the password: %s", msg)
			}
			if !strings.HasPrefix(msg, "pgsecure") {
				t.Fatalf("error without the pgsecure prefix: %s", msg)
			}
			var ce *pgsecure.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, pgsecure.ErrInsecureConfig) {
				t.Fatalf("not a *ConfigError wrapping ErrInsecureConfig: %s", msg)
			}
			return
		}
		cc := cfg.ConnConfig
		check := func(host string, tc *tls.Config) {
			if tc == nil {
				t.Fatalf("accepted without TLS for host %q", host)
			}
			if strings.HasPrefix(host, "/") || strings.HasPrefix(host, "@") {
				t.Fatalf("accepted unix-socket host %q", host)
			}
		}
		check(cc.Host, cc.TLSConfig)
		for _, fb := range cc.Fallbacks {
			check(fb.Host, fb.TLSConfig)
		}
	})
}
