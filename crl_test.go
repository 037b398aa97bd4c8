package pgsecure

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCRLFileProblemsRefused: a CRL file or directory pgsecure cannot use
// is a configuration error (ErrInsecureConfig) naming the setting and the
// fix, never a silently skipped check. (libpq skips the check silently when
// its sslcrl file does not load; see docs/threat-model.md, Limits.)
func TestCRLFileProblemsRefused(t *testing.T) {
	cleanEnv(t)
	ca := writeCA(t)
	dir := t.TempDir()
	notCRL := filepath.Join(dir, "cert.pem")
	caPEM, err := os.ReadFile(ca)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(notCRL, caPEM, 0o600))
	broken := filepath.Join(dir, "broken.pem")
	require.NoError(t, os.WriteFile(broken, []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), 0o600))

	for _, c := range []struct {
		name, dsn, setting string
		env                map[string]string
		build              func(*Builder)
	}{
		{name: "missing sslcrl", dsn: "sslcrl=" + filepath.Join(dir, "none.crl"), setting: "sslcrl"},
		{name: "sslcrl without a CRL", dsn: "sslcrl=" + notCRL, setting: "sslcrl"},
		{name: "sslcrl that does not parse", dsn: "sslcrl=" + broken, setting: "sslcrl"},
		{name: "PGSSLCRL without a CRL", env: map[string]string{"PGSSLCRL": notCRL}, setting: "PGSSLCRL"},
		{name: "missing sslcrldir", dsn: "sslcrldir=" + filepath.Join(dir, "nodir"), setting: "sslcrldir"},
		{name: "PGSSLCRLDIR missing", env: map[string]string{"PGSSLCRLDIR": filepath.Join(dir, "nodir")}, setting: "PGSSLCRLDIR"},
		{name: "CRLFiles empty path", build: func(b *Builder) { b.CRLFiles("") }, setting: "CRLFiles"},
		{name: "CRLFiles broken", build: func(b *Builder) { b.CRLFiles(broken) }, setting: "CRLFiles"},
		{name: "CRLDir missing", build: func(b *Builder) { b.CRLDir(filepath.Join(dir, "nodir")) }, setting: "CRLDir"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			b := NewBuilder("host=db.example.com user=u password=" + testPassword + " " + c.dsn).RootCAFile(ca)
			if c.build != nil {
				c.build(b)
			}
			_, err := b.Config(context.Background())
			require.ErrorIs(t, err, ErrInsecureConfig)
			assert.Contains(t, err.Error(), c.setting, "the error names the setting")
			assert.Contains(t, err.Error(), "openssl", "the error says how to make a usable CRL")
			assert.NotContains(t, err.Error(), testPassword)
		})
	}
}

// TestEmptyCRLSettingIsUnset: libpq treats sslcrl= and sslcrldir= with an
// empty value as not set; so does pgsecure.
func TestEmptyCRLSettingIsUnset(t *testing.T) {
	cleanEnv(t)
	cfg, err := NewBuilder("host=db.example.com user=u sslcrl='' sslcrldir=''").RootCAFile(writeCA(t)).Config(context.Background())
	require.NoError(t, err)
	assert.NotContains(t, cfg.ConnConfig.RuntimeParams, "sslcrl", "consumed, not sent to the server")
	assert.NotContains(t, cfg.ConnConfig.RuntimeParams, "sslcrldir")
}

// TestImplicitRootCRLWarns: libpq reads ~/.postgresql/root.crl when no CRL
// is set; pgsecure does not, and says so rather than dropping the check
// silently.
func TestImplicitRootCRLWarns(t *testing.T) {
	home := cleanEnv(t)
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".postgresql"), 0o700))
	crl := filepath.Join(home, ".postgresql", "root.crl")
	require.NoError(t, os.WriteFile(crl, []byte("not read\n"), 0o600))
	var logs bytes.Buffer
	_, err := NewBuilder("host=db.example.com user=u").RootCAFile(writeCA(t)).Logger(slog.New(slog.NewTextHandler(&logs, nil))).
		Config(context.Background())
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "sslcrl="+crl)

	logs.Reset()
	_, err = NewBuilder("host=db.example.com user=u sslcrl=''").RootCAFile(writeCA(t)).Logger(slog.New(slog.NewTextHandler(&logs, nil))).
		Config(context.Background())
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "root.crl", "an empty sslcrl is no CRL, as in libpq")
}
