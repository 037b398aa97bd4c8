package main

import (
	"fmt"
	"strings"

	"context"
	"github.com/pgsecure/pgsecure/cmd/pgsecure/internal/pgwire"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const appPassword = "Ch3ck-s3cret-pw"

func TestCheckSecureCluster(t *testing.T) {
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "app", appPassword)
	dsn := pg.URL("app", appPassword, "postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	chain, err := testutil.ServerCertificates(ctx, pg.Addr())
	require.NoError(t, err)

	t.Run("json", func(t *testing.T) {
		r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
		require.Equal(t, exitOK, res.code, res.all())
		assert.True(t, r.Secure)
		assert.Equal(t, pg.Addr(), r.Addr)
		assert.Equal(t, "app", r.User)
		assert.Equal(t, "postgres", r.Database)
		require.NotNil(t, r.TLS)
		assert.Equal(t, "TLSv1.3", r.TLS.Version)
		assert.NotEmpty(t, r.TLS.Cipher)
		require.Len(t, r.ServerChain, 1)
		assert.Equal(t, []string{"localhost"}, r.ServerChain[0].DNSNames)
		assert.Equal(t, []string{"127.0.0.1", "::1"}, r.ServerChain[0].IPAddresses)
		assert.InDelta(t, 365, r.ServerChain[0].ExpiresInDays, 1)
		assert.Equal(t, certgen.SPKIPin(chain[0]), r.LeafSPKIPin)
		require.NotNil(t, r.PgStatSSL)
		assert.True(t, r.PgStatSSL.SSL)
		assert.Equal(t, r.TLS.Version, r.PgStatSSL.Version)
		assert.NotZero(t, r.BackendPID)
		require.NotNil(t, r.Auth)
		assert.Equal(t, "scram-sha-256-plus", r.Auth.Method, "pgx binds SCRAM to TLS when the server offers it")
		assert.True(t, r.Auth.ChannelBinding)
		assert.Equal(t, []uint32{10, 11, 12, 0}, r.Auth.Requests)
		require.NotNil(t, r.Probe)
		assert.Equal(t, "refused", r.Probe.Result)
		assert.Equal(t, "28000", r.Probe.SQLState)
		assert.Empty(t, r.ClientDN)
		assert.NotContains(t, res.all(), appPassword)
	})

	t.Run("table", func(t *testing.T) {
		res := runCLI(t, noEnv, "check", dsn, "--ca", pki.CAFile)
		require.Equal(t, exitOK, res.code, res.all())
		for _, want := range []string{"TLS version", "TLSv1.3", "DNS names", "localhost", "IP addresses", "127.0.0.1, ::1",
			"SPKI pin", certgen.SPKIPin(chain[0]), "pg_stat_ssl", "ssl ", "true", "method", "scram-sha-256-plus",
			"client DN", "plaintext refused (good)", "result: SECURE (exit 0)"} {
			assert.Contains(t, res.stdout, want)
		}
		assert.Empty(t, res.stderr)
		t.Log("\n" + res.stdout)
	})
}

func TestCheckFindsPlaintextAccepted(t *testing.T) {
	isolate(t)
	pki := testutil.NewPKI(t)
	// The seed guide's HBA: "host" matches TLS and plaintext alike.
	pg := pki.StartPostgres(t, testutil.PGOptions{HBA: []string{"host all all 127.0.0.1/32 scram-sha-256"}})
	pg.CreateRole(t, "app", appPassword)
	tap := testutil.WireTap(t, pg.Addr())
	dsn := fmt.Sprintf("postgres://app:%s@127.0.0.1:%d/postgres", appPassword, tap.Port)

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
	require.Equal(t, exitInsecure, res.code, res.all())
	assert.False(t, r.Secure)
	assert.Empty(t, r.Error, "the TLS connection itself is fine")
	require.NotNil(t, r.Probe)
	assert.Equal(t, "accepted", r.Probe.Result)
	require.NotNil(t, r.Probe.AuthCode)
	assert.Equal(t, 10, *r.Probe.AuthCode, "the server offered SASL in plaintext")
	assert.Contains(t, findings(r, sevInsecure), `server accepts plaintext connections for user "app" database "postgres"`)
	assert.Contains(t, findings(r, sevInsecure), "`hostnossl all all 0.0.0.0/0 reject` (and `hostnossl all all ::/0 reject`) before other host lines")

	// What crossed the network: the probe's StartupMessage in the clear, and
	// never the password, in any connection.
	wire := tap.Wire()
	assert.Contains(t, string(wire), string(pgwire.StartupMessage("app", "postgres")))
	assert.NotContains(t, string(wire), appPassword)
	assert.Equal(t, 2, tap.Conns(), "one TLS connection and one plaintext probe")
	assert.NotContains(t, res.all(), appPassword)

	table := runCLI(t, noEnv, "check", "--ca", pki.CAFile, dsn)
	assert.Equal(t, exitInsecure, table.code)
	assert.Contains(t, table.stdout, "INSECURE  server accepts plaintext connections")
	assert.Contains(t, table.stdout, "result: NOT SECURE (exit 1)")
}

func TestCheckWrongCA(t *testing.T) {
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "app", appPassword)
	other := testutil.NewPKI(t)

	r, res := checkJSON(t, noEnv, "--ca", other.CAFile, pg.URL("app", appPassword, "postgres"))
	assert.Equal(t, exitInsecure, res.code, res.all())
	assert.False(t, r.Secure)
	assert.Contains(t, r.Error, "server certificate")
	assert.Contains(t, res.stderr, "pgsecure check: ")
	assert.Contains(t, res.stderr, "server certificate")
	assert.Nil(t, r.TLS, "nothing verified, nothing reported as verified")
	assert.Nil(t, r.Auth, "no credentials were offered to an unverified server")
	assert.NotContains(t, res.all(), appPassword)
}

func TestCheckUsageErrors(t *testing.T) {
	isolate(t)
	for name, args := range map[string][]string{
		"unknown flag":      {"check", "--bogus"},
		"two DSNs":          {"check", "host=a", "host=b"},
		"cert without key":  {"check", "--cert", "c.pem", "host=a"},
		"bad timeout":       {"check", "--timeout", "-1s", "host=a"},
		"unknown command":   {"frobnicate"},
		"no command":        {},
		"unknown certs cmd": {"certs", "frobnicate"},
	} {
		t.Run(name, func(t *testing.T) {
			res := runCLI(t, noEnv, args...)
			assert.Equal(t, exitUsage, res.code, res.all())
			assert.NotEmpty(t, res.stderr)
		})
	}
}

func TestCheckRefusesWeakConfiguration(t *testing.T) {
	isolate(t)
	ca := testutil.NewPKI(t).CAFile
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"sslmode in DSN":      {[]string{"postgres://app:" + appPassword + "@127.0.0.1:1/db?sslmode=require"}, nil, "sslmode (from connection string)"},
		"sslmode in env":      {[]string{"postgres://app@127.0.0.1:1/db"}, map[string]string{"PGSSLMODE": "disable", "PGPASSWORD": appPassword}, "sslmode (from PGSSLMODE environment variable)"},
		"keyword DSN":         {[]string{"host=127.0.0.1 port=1 user=app password='" + appPassword + "' sslmode=allow"}, nil, `"allow" is weaker than verify-full`},
		"ca and system roots": {[]string{"--system-roots", "host=127.0.0.1 port=1 password=" + appPassword}, nil, "more than one trust anchor"},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"check", "--ca", ca}, tc.args...)
			res := runCLI(t, envOf(tc.env), args...)
			assert.Equal(t, exitUsage, res.code, res.all())
			assert.Contains(t, res.stderr, tc.want)
			assert.NotContains(t, res.all(), appPassword)
		})
	}
}

func TestCheckNeverPrintsPasswords(t *testing.T) {
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "app", "the-right-one")
	for name, tc := range map[string]struct {
		dsn string
		env map[string]string
	}{
		"url":        {pg.URL("app", appPassword, "postgres"), nil},
		"keyword":    {fmt.Sprintf("host=127.0.0.1 port=%d user=app password='%s' dbname=postgres", pg.Port, appPassword), nil},
		"PGPASSWORD": {pg.URL("app", "", "postgres"), map[string]string{"PGPASSWORD": appPassword}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, mode := range []string{"--json=false", "--json"} {
				res := runCLI(t, envOf(tc.env), "check", mode, "--ca", pki.CAFile, tc.dsn)
				assert.Equal(t, exitInsecure, res.code, res.all())
				assert.Contains(t, res.stderr, "28P01", "the wrong password was sent and rejected")
				assert.NotContains(t, res.all(), appPassword)
			}
		})
	}
}

func TestCheckTakesSettingsFromEnvironment(t *testing.T) {
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "envuser", appPassword)
	env := map[string]string{"PGHOST": "127.0.0.1", "PGPORT": fmt.Sprint(pg.Port), "PGUSER": "envuser",
		"PGPASSWORD": appPassword, "PGDATABASE": "postgres", "PGSSLROOTCERT": pki.CAFile}

	r, res := checkJSON(t, envOf(env))
	require.Equal(t, exitOK, res.code, res.all())
	assert.Equal(t, "envuser", r.User)
	assert.Equal(t, "postgres", r.Database)

	// The DSN wins over the environment, key by key.
	pg.CreateRole(t, "dsnuser", appPassword)
	r, res = checkJSON(t, envOf(env), fmt.Sprintf("postgres://dsnuser@127.0.0.1:%d", pg.Port))
	require.Equal(t, exitOK, res.code, res.all())
	assert.Equal(t, "dsnuser", r.User)
	assert.Equal(t, "postgres", r.Database, "database from PGDATABASE")
}

func TestCheckCredentialsFromSecretSource(t *testing.T) {
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "fromfile", appPassword)
	dir := t.TempDir()
	writeFile(t, dir, "username", "fromfile\n")
	writeFile(t, dir, "password", appPassword+"\n")

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, "--credentials", "file:"+dir, pg.URL("", "", "postgres"))
	require.Equal(t, exitOK, res.code, res.all())
	assert.Equal(t, "fromfile", r.User)
	assert.NotContains(t, res.all(), appPassword)

	res = runCLI(t, noEnv, "check", "--ca", pki.CAFile, "--credentials", "nosuch://x", pg.URL("", "", "postgres"))
	assert.Equal(t, exitUsage, res.code, res.all())
	assert.Contains(t, res.stderr, `no secret source is registered for scheme "nosuch"`)
}

// findings joins the messages of the findings of one severity.
func findings(r checkReport, severity string) string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity == severity {
			out = append(out, f.Message)
		}
	}
	return strings.Join(out, "\n")
}
