package pgsecure

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgsecure/pgsecure/internal/libpq"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testPassword = "s3cr3t-Pa55word"

// cleanEnv clears every PG* variable pgsecure or pgx reads and points HOME at
// an empty directory, so the developer's environment cannot leak into a test.
func cleanEnv(t *testing.T) string {
	t.Helper()
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			name, _, _ := strings.Cut(kv, "=")
			t.Setenv(name, "")
		}
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	return home
}

func writeCA(t *testing.T) string {
	t.Helper()
	ca, err := certgen.NewCA("config test CA", certgen.ECDSAP256)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(p, ca.CertPEM, 0o600))
	return p
}

func TestWeakSSLModeRefused(t *testing.T) {
	cleanEnv(t)
	ca := writeCA(t)
	for _, mode := range []string{"disable", "allow", "prefer", "require", "verify-ca", "bogus"} {
		for _, form := range []string{
			"host=db.example.com user=app password=" + testPassword + " sslmode=" + mode,
			"postgres://app:" + testPassword + "@db.example.com/app?sslmode=" + mode,
		} {
			_, err := NewBuilder(form).RootCAFile(ca).Config(context.Background())
			require.Error(t, err, form)
			assert.ErrorIs(t, err, ErrInsecureConfig)
			assert.Contains(t, err.Error(), "sslmode")
			assert.Contains(t, err.Error(), mode)
			assert.Contains(t, err.Error(), "verify-full", "the error says the fix")
			assert.NotContains(t, err.Error(), testPassword)
		}
	}
}

func TestWeakPGSSLModeRefused(t *testing.T) {
	cleanEnv(t)
	t.Setenv("PGSSLMODE", "require")
	_, err := NewBuilder("host=db.example.com user=app").RootCAFile(writeCA(t)).Config(context.Background())
	require.ErrorIs(t, err, ErrInsecureConfig)
	assert.Contains(t, err.Error(), "PGSSLMODE")
	assert.Contains(t, err.Error(), "unset PGSSLMODE")

	// The connection string wins over the environment, as in libpq.
	_, err = NewBuilder("host=db.example.com user=app sslmode=verify-full").RootCAFile(writeCA(t)).Config(context.Background())
	assert.NoError(t, err)
}

func TestRefusedAndUnknownKeys(t *testing.T) {
	cleanEnv(t)
	ca := writeCA(t)
	for _, dsn := range []string{
		"host=h sslcrl=/x.crl", "host=h sslcrldir=/x", "host=h sslcompression=1", "host=h requiressl=1",
		"postgres://h/db?ssl=true", "host=h service=prod", "host=h sslmdoe=verify-full", "host=h sslkeylogfile=/tmp/k",
		"host=h gssencmode=require", "host=h ssl_min_protocol_version=TLSv1.1", "host=h ssl_max_protocol_version=SSLv3",
		"host=h sslnegotiation=tcp", "host=h sslsni=2", "host=h sslcertmode=maybe",
	} {
		_, err := NewBuilder(dsn + " user=u password=" + testPassword).RootCAFile(ca).Config(context.Background())
		if strings.HasPrefix(dsn, "postgres://") {
			_, err = NewBuilder(dsn).RootCAFile(ca).Config(context.Background())
		}
		require.Error(t, err, dsn)
		assert.ErrorIs(t, err, ErrInsecureConfig, dsn)
		assert.NotContains(t, err.Error(), testPassword)
		key := strings.SplitN(strings.Fields(strings.ReplaceAll(dsn, "?", " "))[1], "=", 2)[0]
		assert.Contains(t, err.Error(), key, "the error names the setting")
	}
}

func TestConsumedSettingsAreNotSentToServer(t *testing.T) {
	cleanEnv(t)
	cfg, err := NewBuilder("host=db.example.com user=u ssl_min_protocol_version=TLSv1.3 gssencmode=disable sslsni=1 application_name=x").
		RootCAFile(writeCA(t)).Config(context.Background())
	require.NoError(t, err)
	assert.NotContains(t, cfg.ConnConfig.RuntimeParams, "ssl_min_protocol_version")
	assert.NotContains(t, cfg.ConnConfig.RuntimeParams, "gssencmode")
	assert.Equal(t, "x", cfg.ConnConfig.RuntimeParams["application_name"])
	assert.Equal(t, uint16(tls.VersionTLS13), cfg.ConnConfig.TLSConfig.MinVersion)
}

// TestEveryHostGetsPgsecureTLS checks that no entry pgx could connect to is
// left without pgsecure's TLS configuration, for single and multi-host
// strings and for an absent sslmode (which pgx would turn into "prefer" with
// a plaintext fallback).
func TestEveryHostGetsPgsecureTLS(t *testing.T) {
	cleanEnv(t)
	ca := writeCA(t)
	for _, dsn := range []string{
		"host=db.example.com user=u",
		"host=a.example.com,b.example.com,10.0.0.3 port=5432,5433,5434 user=u",
		"postgres://u@a.example.com:5432,b.example.com:5433/db",
		"postgres://u@a.example.com/db?sslmode=verify-full",
	} {
		cfg, err := NewBuilder(dsn).RootCAFile(ca).Config(context.Background())
		require.NoError(t, err, dsn)
		entries := libpq.Hosts(cfg.ConnConfig)
		require.NotEmpty(t, entries)
		seen := map[string]bool{}
		marker := (*entries[0].TLS).ClientSessionCache
		require.NotNil(t, marker)
		for _, h := range entries {
			tc := *h.TLS
			require.NotNil(t, tc, "host %s of %q has no TLS", h.Host, dsn)
			assert.NotNil(t, tc.VerifyConnection, "host %s: VerifyConnection verifies", h.Host)
			assert.True(t, tc.InsecureSkipVerify, "host %s: Go's own check is replaced by VerifyConnection (libpq's host rules)", h.Host)
			assert.Equal(t, marker, tc.ClientSessionCache, "host %s: marked as pgsecure's", h.Host)
			assert.GreaterOrEqual(t, tc.MinVersion, uint16(tls.VersionTLS12))
			assert.Nil(t, tc.RootCAs, "trust comes only from the pinned roots checked in VerifyConnection")
			seen[h.Host] = true
		}
		assert.Equal(t, len(entries), len(seen), "one entry per host: no plaintext duplicate")
		for name, hook := range map[string]any{"LookupFunc": cfg.ConnConfig.LookupFunc, "DialFunc": cfg.ConnConfig.DialFunc,
			"AfterNetConnect": cfg.ConnConfig.AfterNetConnect, "BuildFrontend": cfg.ConnConfig.BuildFrontend,
			"ValidateConnect":    cfg.ConnConfig.ValidateConnect,
			"pool BeforeConnect": cfg.BeforeConnect, "pool AfterConnect": cfg.AfterConnect} {
			assert.NotNil(t, hook, name)
		}
	}
}

func TestUnixSocketRefused(t *testing.T) {
	cleanEnv(t)
	ca := writeCA(t)
	for _, dsn := range []string{"host=/var/run/postgresql user=u", "host=db.example.com,/tmp user=u", "postgres://u@%2Fvar%2Frun%2Fpostgresql/db"} {
		_, err := NewBuilder(dsn).RootCAFile(ca).Config(context.Background())
		require.ErrorIs(t, err, ErrInsecureConfig, dsn)
		assert.Contains(t, err.Error(), "unix-socket")
	}
	t.Setenv("PGHOST", "/tmp")
	_, err := NewBuilder("user=u").RootCAFile(ca).Config(context.Background())
	require.ErrorIs(t, err, ErrInsecureConfig)
}

func TestMissingCARefused(t *testing.T) {
	home := cleanEnv(t)
	_, err := NewBuilder("host=db.example.com user=u").Config(context.Background())
	require.ErrorIs(t, err, ErrInsecureConfig)
	assert.Contains(t, err.Error(), "no CA certificate given")
	assert.Contains(t, err.Error(), "RootCAFile")

	// pgx would silently trust ~/.postgresql/root.crt; pgsecure names it and
	// asks for it to be given explicitly.
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".postgresql"), 0o700))
	rootCRT := filepath.Join(home, ".postgresql", "root.crt")
	require.NoError(t, os.WriteFile(rootCRT, []byte("not even PEM"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".postgresql", "postgresql.crt"), []byte("junk"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".postgresql", "postgresql.key"), []byte("junk"), 0o600))
	_, err = NewBuilder("host=db.example.com user=u").Config(context.Background())
	require.ErrorIs(t, err, ErrInsecureConfig)
	assert.Contains(t, err.Error(), rootCRT)

	// With an explicit CA, the junk files in ~/.postgresql are never read.
	_, err = NewBuilder("host=db.example.com user=u").RootCAFile(writeCA(t)).Config(context.Background())
	assert.NoError(t, err)
}

func TestRootCASources(t *testing.T) {
	cleanEnv(t)
	ca := writeCA(t)
	pemBytes, err := os.ReadFile(ca)
	require.NoError(t, err)
	ctx := context.Background()

	_, err = NewBuilder("host=h user=u sslrootcert=" + ca).Config(ctx)
	assert.NoError(t, err, "sslrootcert in the connection string")
	t.Setenv("PGSSLROOTCERT", ca)
	_, err = NewBuilder("host=h user=u").Config(ctx)
	assert.NoError(t, err, "PGSSLROOTCERT")
	_, err = NewBuilder("host=h user=u").RootCAFile(ca).Config(ctx)
	assert.NoError(t, err, "the same file twice is no conflict")
	_, err = NewBuilder("host=h user=u").RootCAPEM(pemBytes).Config(ctx)
	require.ErrorIs(t, err, ErrInsecureConfig, "two different trust anchors conflict")
	assert.Contains(t, err.Error(), "conflicts")
	t.Setenv("PGSSLROOTCERT", "")

	_, err = NewBuilder("host=h user=u").RootCAPEM(pemBytes).Config(ctx)
	assert.NoError(t, err)
	_, err = NewBuilder("host=h user=u").RootCAPEM([]byte("garbage")).Config(ctx)
	require.ErrorIs(t, err, ErrInsecureConfig)
	assert.Contains(t, err.Error(), "no PEM")
	_, err = NewBuilder("host=h user=u").RootCAFile(filepath.Join(t.TempDir(), "missing.crt")).Config(ctx)
	require.ErrorIs(t, err, ErrInsecureConfig)
	assert.Contains(t, err.Error(), "missing.crt")
	_, err = NewBuilder("host=h user=u sslrootcert=system").Config(ctx)
	assert.NoError(t, err, "system roots only when asked for")
	_, err = NewBuilder("host=h user=u").SystemRoots().RootCAFile(ca).Config(ctx)
	assert.ErrorIs(t, err, ErrInsecureConfig)
}

func TestParseErrorsDoNotLeakPassword(t *testing.T) {
	cleanEnv(t)
	ca := writeCA(t)
	for _, dsn := range []string{
		"host=h user=u password=" + testPassword + " port=notaport",
		"postgres://u:" + testPassword + "@h:notaport/db",
		"host=h password='" + testPassword,
		"postgres://u:" + testPassword + "@h/db?connect_timeout=x",
	} {
		_, err := NewBuilder(dsn).RootCAFile(ca).Config(context.Background())
		require.Error(t, err, dsn)
		assert.NotContains(t, err.Error(), testPassword)
	}
}

func TestParseKeywordValue(t *testing.T) {
	t.Parallel()
	m, err := libpq.Parse(`host=h  dbname='my db' password='it\'s' user=a\ b`)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"host": "h", "database": "my db", "password": "it's", "user": "a b"}, m)
	_, err = libpq.Parse("host")
	assert.Error(t, err)
	m, err = libpq.Parse("postgres://u@h/db?sslmode=disable&sslmode=verify-full&dbname=x%20y")
	require.NoError(t, err)
	assert.Equal(t, "verify-full", m["sslmode"], "last one wins")
	assert.Equal(t, "x y", m["database"])
	m, err = libpq.Parse("postgres://u:pa?ss#x@h/db?sslmode=verify-full")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"user": "u", "password": "pa?ss#x", "host": "h", "database": "db", "sslmode": "verify-full"}, m,
		"the user information ends at the '@', as in libpq and pgx")
}

func TestSpecialFilesRefused(t *testing.T) {
	cleanEnv(t)
	for _, dsn := range []string{"host=h sslrootcert=/dev/zero", "host=h sslcert=/dev/zero sslkey=/dev/zero"} {
		b := NewBuilder(dsn)
		if strings.Contains(dsn, "sslcert") {
			b.RootCAFile(writeCA(t))
		}
		_, err := b.Config(context.Background())
		require.ErrorIs(t, err, ErrInsecureConfig, dsn)
		assert.Contains(t, err.Error(), "/dev/zero")
	}
}
