package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/cmd/pgsecure/internal/pgwire"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const appPassword = "Ch3ck-s3cret-pw"

func TestCheckSecureCluster(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{Conf: testutil.GuideConf()})
	pg.CreateRole(t, "app", appPassword)
	pg.Exec(t, "GRANT pg_read_all_settings TO app")
	dsn := pg.URL("app", appPassword, "postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	chain, err := testutil.ServerCertificates(ctx, pg.Addr())
	require.NoError(t, err)

	t.Run("json", func(t *testing.T) {
		r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
		require.Equal(t, exitUnchecked, res.code, "pg_hba_file_rules is not readable by app: %s", res.all())
		assert.Equal(t, "incomplete", r.Verdict)
		assert.Equal(t, pg.Addr(), r.Addr)
		assert.Equal(t, "app", r.User)
		assert.Equal(t, "postgres", r.Database)
		assert.Equal(t, "postgres://app:"+secrets.Redacted+"@"+pg.Addr()+"/postgres", r.Target)
		for _, s := range r.Stages {
			assert.Equal(t, stagePassed, s.Result, s.Name)
			assert.NotEmpty(t, s.Stage, "step %s names its stage", s.Name)
		}
		assert.Len(t, r.Stages, 6)
		require.NotNil(t, r.TLS)
		assert.Equal(t, "TLSv1.3", r.TLS.Version)
		assert.NotEmpty(t, r.TLS.Cipher)
		require.Len(t, r.ServerChain, 1)
		assert.Equal(t, []string{"localhost"}, r.ServerChain[0].DNSNames)
		assert.Equal(t, []string{"127.0.0.1", "::1"}, r.ServerChain[0].IPAddresses)
		assert.Equal(t, opensslSerial(t, pg), r.ServerChain[0].Serial, "the serial as `openssl x509 -serial` prints it")
		assert.InDelta(t, 365, r.ServerChain[0].ExpiresInDays, 1)
		assert.Equal(t, certgen.SPKIPin(chain[0]), r.LeafSPKIPin)
		require.NotNil(t, r.PgStatSSL)
		assert.True(t, r.PgStatSSL.SSL)
		assert.Equal(t, r.TLS.Version, r.PgStatSSL.Version)
		assert.NotZero(t, r.BackendPID)
		require.NotNil(t, r.Auth)
		assert.Equal(t, "scram-sha-256", r.Auth.Method, "libpq's require_auth spelling")
		assert.True(t, r.Auth.ChannelBinding, "pgx binds SCRAM to TLS when the server offers it")
		assert.Equal(t, "SCRAM-SHA-256-PLUS", r.Auth.SASLMechanism)
		assert.Equal(t, []uint32{10, 11, 12, 0}, r.Auth.Requests)
		require.NotNil(t, r.Probe)
		assert.Equal(t, "refused", r.Probe.Result)
		assert.Equal(t, "28000", r.Probe.SQLState)
		assert.Empty(t, r.ClientDN)
		for _, check := range []string{"tls", "server_proof", "certificate_expiry", "authentication", "plaintext",
			"password_encryption", "ssl_min_protocol_version", "tls_versions", "ssl_ciphers", "log_connections", "role_password"} {
			for _, f := range findingsOf(t, r, check) {
				assert.Equal(t, sevOK, f.Severity, "%s: %s", check, f.Message)
			}
		}
		hba := findingsOf(t, r, "pg_hba")
		require.Len(t, hba, 1)
		assert.Equal(t, sevUnchecked, hba[0].Severity)
		assert.Contains(t, hba[0].Message, "not checked (needs superuser, or SELECT on pg_hba_file_rules")
		assert.NotContains(t, res.all(), appPassword)
	})

	t.Run("table", func(t *testing.T) {
		res := runCLI(t, noEnv, "check", dsn, "--ca", pki.CAFile, "--audit=off")
		require.Equal(t, exitOK, res.code, res.all())
		for _, want := range []string{"TLS version", "TLSv1.3", "DNS names", "localhost", "IP addresses", "127.0.0.1, ::1",
			"SPKI pin", certgen.SPKIPin(chain[0]), "pg_stat_ssl", "ssl ", "true", "method           scram-sha-256\n",
			"channel binding  yes (SASL mechanism SCRAM-SHA-256-PLUS", "client DN", "plaintext refused (good)",
			"result: SECURE (exit 0)"} {
			assert.Contains(t, res.stdout, want)
		}
		assert.Regexp(t, `server_proof +passed`, res.stdout)
		assert.Regexp(t, `\n  serial +`+opensslSerial(t, pg)+`\n`, res.stdout, "the serial as openssl prints it")
		assert.NotContains(t, res.stdout, "password_encryption", "--audit=off")
		assert.Empty(t, res.stderr)
		t.Log("\n" + res.stdout)
	})
}

// opensslSerial is the serial of pg's certificate as `openssl x509 -noout
// -serial` prints it, without its "serial=".
func opensslSerial(t *testing.T, pg *testutil.Postgres) string {
	t.Helper()
	crt, _ := pg.ServerCertFiles()
	return opensslSerialOf(t, crt)
}

// opensslSerialOf is the serial of the certificate in crt as `openssl x509
// -noout -serial` prints it, without its "serial=".
func opensslSerialOf(t *testing.T, crt string) string {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, "openssl", "openssl"), "x509", "-noout", "-serial", "-in", crt).Output()
	require.NoError(t, err)
	serial, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "serial=")
	require.True(t, ok, "%s", out)
	return serial
}

func TestCheckFindsPlaintextAccepted(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	// The seed guide's HBA: "host" matches TLS and plaintext alike.
	pg := pki.StartPostgres(t, testutil.PGOptions{HBA: []string{"host all all 127.0.0.1/32 scram-sha-256"}})
	pg.CreateRole(t, "app", appPassword)
	tap := testutil.WireTap(t, pg.Addr())
	dsn := fmt.Sprintf("postgres://app:%s@127.0.0.1:%d/postgres", appPassword, tap.Port)

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
	require.Equal(t, exitInsecure, res.code, res.all())
	assert.Equal(t, "insecure", r.Verdict)
	assert.Empty(t, r.Error, "the TLS connection itself is fine")
	require.NotNil(t, r.Probe)
	assert.Equal(t, "accepted", r.Probe.Result)
	require.NotNil(t, r.Probe.AuthCode)
	assert.Equal(t, 10, *r.Probe.AuthCode, "the server offered SASL in plaintext")
	assert.Contains(t, findings(r, sevInsecure), `server accepts plaintext connections for user "app" database "postgres"`)
	assert.Contains(t, findingsOf(t, r, "plaintext")[0].Fix, "`hostnossl all all 0.0.0.0/0 reject` (and `hostnossl all all ::/0 reject`) before other host lines")

	// What crossed the network: the probe's StartupMessage in the clear, and
	// never the password, in any connection.
	wire := tap.Wire()
	assert.Contains(t, string(wire), string(pgwire.StartupMessage("app", "postgres")))
	assert.NotContains(t, string(wire), appPassword)
	assert.Equal(t, 4, tap.Conns(), "one TLS connection, the TLS 1.0/1.1 and weak-cipher probes (handshakes only, nothing sent after them) and one plaintext probe")
	assert.NotContains(t, res.all(), appPassword)

	table := runCLI(t, noEnv, "check", "--ca", pki.CAFile, dsn)
	assert.Equal(t, exitInsecure, table.code)
	assert.Regexp(t, `INSECURE +server accepts plaintext connections`, table.stdout)
	assert.Contains(t, table.stdout, "result: INSECURE (exit 1)")
}

func TestCheckWrongCA(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "app", appPassword)
	other := testutil.NewPKI(t)

	r, res := checkJSON(t, noEnv, "--ca", other.CAFile, pg.URL("app", appPassword, "postgres"))
	assert.Equal(t, exitInsecure, res.code, res.all())
	assert.Equal(t, "insecure", r.Verdict)
	assert.Contains(t, r.Error, "server certificate")
	assertOptionsNameFlags(t, res.all()) // a command-line user is told about flags
	assert.Contains(t, r.Hint, "--ca FILE")
	assert.Contains(t, res.stderr, "pgsecure check: ")
	assert.Contains(t, res.stderr, "server certificate")
	assert.Equal(t, map[string]string{stageTCP: stagePassed, stageTLS: stageFailed, stageChain: stageFailed, stageHost: stageNotReached,
		stageAuth: stageNotReached, stageServer: stageNotReached}, stageResults(r))
	// One vocabulary: the failed steps belong to the stage the error names.
	for _, s := range r.Stages {
		if s.Result == stageFailed {
			assert.Contains(t, r.Error, "stage: "+string(s.Stage), "step %s", s.Name)
		}
	}
	assert.Nil(t, r.TLS, "nothing verified, nothing reported as verified")
	assert.Nil(t, r.Auth, "no credentials were offered to an unverified server")
	assert.NotContains(t, res.all(), appPassword)
}

func TestCheckUsageErrors(t *testing.T) {
	t.Parallel()
	isolate(t)
	for name, args := range map[string][]string{
		"unknown flag":      {"check", "--bogus"},
		"bad audit":         {"check", "--audit", "maybe", "host=a"},
		"bad parallel":      {"check", "--parallel", "0", "host=a"},
		"bad expiry days":   {"check", "--expiry-days", "-1", "host=a"},
		"no targets file":   {"check", "--targets", "/nonexistent/targets"},
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
	t.Parallel()
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
		"missing CA file":     {[]string{"--ca", "/nonexistent/ca.crt", "host=127.0.0.1 port=1 password=" + appPassword}, nil, "--ca (from the command line)"},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"check", "--ca", ca}, tc.args...)
			res := runCLI(t, envOf(tc.env), args...)
			assert.Equal(t, exitUsage, res.code, res.all())
			assert.Contains(t, res.all(), tc.want)
			assert.Equal(t, 1, strings.Count(res.all(), tc.want), "printed once: %s", res.all())
			assertOptionsNameFlags(t, res.all()) // a command-line user is told about flags
			assert.NotContains(t, res.all(), appPassword)
		})
	}
}

func TestCheckNeverPrintsPasswords(t *testing.T) {
	t.Parallel()
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
				assert.Equal(t, exitNoLogin, res.code, "refused correctly: not insecure: %s", res.all())
				assert.Contains(t, res.all(), "28P01", "the wrong password was sent and rejected")
				assert.NotContains(t, res.all(), appPassword)
			}
		})
	}
}

func TestCheckTakesSettingsFromEnvironment(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "envuser", appPassword)
	env := map[string]string{"PGHOST": "127.0.0.1", "PGPORT": fmt.Sprint(pg.Port), "PGUSER": "envuser",
		"PGPASSWORD": appPassword, "PGDATABASE": "postgres", "PGSSLROOTCERT": pki.CAFile}

	r, res := checkJSON(t, envOf(env), "--audit=off")
	require.Equal(t, exitOK, res.code, res.all())
	assert.Equal(t, "envuser", r.User)
	assert.Equal(t, "postgres", r.Database)

	// The DSN wins over the environment, key by key.
	pg.CreateRole(t, "dsnuser", appPassword)
	r, res = checkJSON(t, envOf(env), "--audit=off", fmt.Sprintf("postgres://dsnuser@127.0.0.1:%d", pg.Port))
	require.Equal(t, exitOK, res.code, res.all())
	assert.Equal(t, "dsnuser", r.User)
	assert.Equal(t, "postgres", r.Database, "database from PGDATABASE")
}

func TestCheckCredentialsFromSecretSource(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "fromfile", appPassword)
	dir := t.TempDir()
	writeFile(t, dir, "username", "fromfile\n")
	writeFile(t, dir, "password", appPassword+"\n")

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, "--audit=off", "--credentials", "file:"+dir, pg.URL("", "", "postgres"))
	require.Equal(t, exitOK, res.code, res.all())
	assert.Equal(t, "fromfile", r.User)
	assert.NotContains(t, res.all(), appPassword)

	res = runCLI(t, noEnv, "check", "--ca", pki.CAFile, "--credentials", "nosuch://x", pg.URL("", "", "postgres"))
	assert.Equal(t, exitUsage, res.code, res.all())
	assert.Contains(t, res.all(), `no secret source is registered for scheme "nosuch"`)
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

// TestCheckWrongPasswordIsNotInsecure: a server that refuses a wrong
// password did its job; the report keeps what was verified before it.
func TestCheckWrongPasswordIsNotInsecure(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "app", "the-right-one")

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, pg.URL("app", appPassword, "postgres"))
	assert.Equal(t, exitNoLogin, res.code, res.all())
	assert.Equal(t, "cannot-log-in", r.Verdict)
	assert.Equal(t, map[string]string{stageTCP: stagePassed, stageTLS: stagePassed, stageChain: stagePassed, stageHost: stagePassed,
		stageAuth: stageFailed, stageServer: stageNotReached}, stageResults(r))
	for _, s := range r.Stages {
		if s.Name == stageAuth {
			assert.Equal(t, `refused by the server: password authentication failed for user "app" (SQLSTATE 28P01)`, s.Detail)
		}
	}
	assert.Equal(t, pg.Addr(), r.Addr)
	require.NotNil(t, r.TLS, "the verified TLS session is reported although the login failed")
	assert.Equal(t, "TLSv1.3", r.TLS.Version)
	require.Len(t, r.ServerChain, 1)
	assert.Equal(t, []string{"localhost"}, r.ServerChain[0].DNSNames)
	require.NotNil(t, r.Auth)
	assert.Equal(t, "scram-sha-256", r.Auth.Method)
	assert.Contains(t, r.Hint, `the server rejected the password of user "app"`)
	assert.Equal(t, "refused", r.Probe.Result)
	assert.NotContains(t, res.all(), appPassword)
	assert.NotContains(t, res.all(), "login failed", "the library's failed-login warning is not a second report of the error")
}

// TestCheckServerWithoutTLS: a real server with ssl=off answers 'N'.
func TestCheckServerWithoutTLS(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := testutil.StartPostgres(t, testutil.PGOptions{SSLOff: true})
	pg.CreateRole(t, "app", appPassword)

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, pg.URL("app", appPassword, "postgres"))
	assert.Equal(t, exitInsecure, res.code, res.all())
	assert.Equal(t, stagePassed, stageResults(r)[stageTCP])
	assert.Equal(t, stageFailed, stageResults(r)[stageTLS])
	assert.Nil(t, r.TLS)
	assert.Equal(t, "accepted", r.Probe.Result, "the same server takes plaintext")
	assert.Contains(t, findings(r, sevInsecure), "server accepts plaintext connections")
	assert.NotContains(t, res.all(), appPassword)
}

// TestCheckHintsNameFlags: without any trust anchor the fix names the
// libpq setting and the command's flags; any Builder option it names comes
// with its flag.
func TestCheckHintsNameFlags(t *testing.T) {
	t.Parallel()
	isolate(t)
	r, res := checkJSON(t, noEnv, "host=127.0.0.1 port=1 user=app")
	assert.Equal(t, exitUsage, res.code, res.all())
	assert.Contains(t, r.Hint, "sslrootcert")
	assert.Contains(t, r.Hint, "pgsecure check --ca")
	assert.Contains(t, r.Hint, "pgsecure check --system-roots")
	assert.NotContains(t, res.all(), "NewBuilder")
	assertOptionsNameFlags(t, res.all())
}

// TestCheckWrongCAFileHintNamesFlag: --ca naming the server's own (not
// self-signed) certificate is refused with the library's fix, which the
// command prints as the library wrote it; that fix names --ca, the flag the
// user gave, and no Builder option without its flag.
func TestCheckWrongCAFileHintNamesFlag(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pair, err := pki.CA.Issue(certgen.Options{CommonName: "localhost", DNSNames: []string{"localhost"}})
	require.NoError(t, err)
	pg := pki.StartPostgres(t, testutil.PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: pair.KeyPEM})
	pg.CreateRole(t, "app", appPassword)
	leafFile := writeFile(t, t.TempDir(), "leaf.crt", string(pair.CertPEM))

	r, res := checkJSON(t, noEnv, "--ca", leafFile, fmt.Sprintf("postgres://app:%s@localhost:%d/postgres", appPassword, pg.Port))
	assert.Equal(t, exitInsecure, res.code, res.all())
	assert.Contains(t, r.Error, "holds the server certificate itself")
	assert.Contains(t, r.Hint, "pgsecure check --ca", "the hint names the flag the user gave")
	assertOptionsNameFlags(t, res.all())
}

// TestCheckCNOnlyCertificate: a certificate naming the host only in its
// Common Name (the guide's openssl command) says so instead of empty lists.
func TestCheckCNOnlyCertificate(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pair, err := pki.CA.Issue(certgen.Options{CommonName: "localhost"})
	require.NoError(t, err)
	pg := pki.StartPostgres(t, testutil.PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: pair.KeyPEM})
	pg.CreateRole(t, "app", appPassword)

	res := runCLI(t, noEnv, "check", "--audit=off", "--ca", pki.CAFile, fmt.Sprintf("postgres://app:%s@localhost:%d/postgres", appPassword, pg.Port))
	require.Equal(t, exitOK, res.code, res.all())
	assert.Contains(t, res.stdout, "none: the host was matched against the subject's Common Name")
	assert.NotContains(t, res.stdout, "DNS names")
}

// TestCheckNoHBALineHint: a role pg_hba.conf has no line for is refused by
// the server (SQLSTATE 28000); the hint gives the line to add, the error
// line says where and what, once.
func TestCheckNoHBALineHint(t *testing.T) {
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{HBA: []string{
		"hostssl all app 127.0.0.1/32 scram-sha-256",
		"hostnossl all all 0.0.0.0/0 reject",
	}})
	pg.CreateRole(t, "other", appPassword)

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, pg.URL("other", appPassword, "postgres"))
	assert.Equal(t, exitNoLogin, res.code, res.all())
	assert.True(t, strings.HasPrefix(r.Error, "pgsecure: "+pg.Addr()+" (user other, database postgres): the server refused the login (SQLSTATE 28000: "), r.Error)
	assert.NotContains(t, r.Error, "failed to connect to")
	assert.Contains(t, r.Hint, `"hostssl postgres other CLIENT_ADDRESS/32 scram-sha-256"`)
	assert.NotContains(t, res.all(), appPassword)
}
