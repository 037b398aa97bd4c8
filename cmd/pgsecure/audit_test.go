package main

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// createAuditor creates a superuser whose password is stored as SCRAM
// whatever the server's password_encryption says.
func createAuditor(t *testing.T, pg *testutil.Postgres) {
	t.Helper()
	pg.Exec(t, "SET password_encryption = 'scram-sha-256'", "CREATE ROLE auditor SUPERUSER LOGIN PASSWORD '"+appPassword+"'")
}

// severities maps each check to the severities of its findings.
func severities(r checkReport) map[string][]string {
	out := map[string][]string{}
	for _, f := range r.Findings {
		out[f.Check] = append(out[f.Check], f.Severity)
	}
	return out
}

// TestCheckAuditBadServer: every audit finding comes from a real server
// setting that goes against the guide.
func TestCheckAuditBadServer(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{
		Conf: map[string]string{
			"password_encryption":      "'md5'",
			"ssl_min_protocol_version": "'TLSv1'",
			// PostgreSQL's default, and OpenSSL's security level 0 so TLS 1.0/1.1 really work
			"ssl_ciphers":     "'HIGH:MEDIUM:+3DES:!aNULL:@SECLEVEL=0'",
			"log_connections": "off",
		},
		HBA: []string{
			"hostssl all auditor 127.0.0.1/32 scram-sha-256",
			"hostssl all md5user 127.0.0.1/32 md5",
			"hostssl all pwuser 127.0.0.1/32 password",
			"hostssl all trustuser 127.0.0.1/32 trust",
			"host all all 127.0.0.1/32 scram-sha-256",
			"hostnogssenc all all 127.0.0.1/32 scram-sha-256", // not GSS-encrypted: TLS or plaintext
		},
	})
	createAuditor(t, pg)
	sum := md5.Sum([]byte(appPassword + "md5user"))
	pg.Exec(t, "CREATE ROLE md5user LOGIN PASSWORD 'md5"+hex.EncodeToString(sum[:])+"'")

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, pg.URL("auditor", appPassword, "postgres"))
	require.Equal(t, exitInsecure, res.code, res.all())
	byCheck := map[string]string{}
	for _, f := range r.Findings {
		byCheck[f.Check] += f.Severity + ": " + f.Message + " | fix: " + f.Fix + "\n"
	}
	assert.Contains(t, byCheck["password_encryption"], "insecure: password_encryption is md5")
	assert.Contains(t, byCheck["password_encryption"], "fix: set password_encryption = 'scram-sha-256' in postgresql.conf")
	assert.Contains(t, byCheck["ssl_min_protocol_version"], "insecure: ssl_min_protocol_version is TLSv1:")
	assert.Contains(t, byCheck["ssl_min_protocol_version"], "fix: set ssl_min_protocol_version = 'TLSv1.2'")
	assert.Contains(t, byCheck["ssl_ciphers"], "warning: the server accepts the weak TLS 1.2 cipher suite TLS_ECDHE_ECDSA_WITH_")
	assert.Contains(t, byCheck["ssl_ciphers"], "(ssl_ciphers = 'HIGH:MEDIUM:+3DES:!aNULL:@SECLEVEL=0')")
	assert.Contains(t, byCheck["tls_versions"], "insecure: the server accepted a TLSv1.1 handshake | fix: set ssl_min_protocol_version = 'TLSv1.2'")
	assert.Contains(t, byCheck["ssl_ciphers"], "fix: set ssl_ciphers = '"+goodCiphers+"'")
	assert.Contains(t, byCheck["log_connections"], "warning: log_connections is off")
	assert.Contains(t, byCheck["role_password"], `ok: the password of role "auditor" is stored as a SCRAM-SHA-256 verifier`)
	hba := byCheck["pg_hba"]
	assert.Contains(t, hba, "warning: pg_hba.conf line 1 `local all postgres trust` lets clients in without any authentication")
	assert.Contains(t, hba, "warning: pg_hba.conf line 3 `hostssl all md5user 127.0.0.1/32 md5` allows md5 authentication")
	assert.Contains(t, hba, "warning: pg_hba.conf line 4 `hostssl all pwuser 127.0.0.1/32 password` sends the password in cleartext")
	assert.Contains(t, hba, "insecure: pg_hba.conf line 5 `hostssl all trustuser 127.0.0.1/32 trust` lets clients in without any authentication")
	assert.Contains(t, hba, "insecure: pg_hba.conf line 6 `host all all 127.0.0.1/32 scram-sha-256` accepts TCP connections without TLS")
	assert.Contains(t, hba, "insecure: pg_hba.conf line 7 `hostnogssenc all all 127.0.0.1/32 scram-sha-256` accepts TCP connections without TLS")
	assert.Contains(t, byCheck["plaintext"], "insecure: server accepts plaintext connections")
	assert.NotContains(t, res.all(), appPassword)

	// The same server through an unprivileged role: what it may not read is
	// "not checked", never a pass.
	r, res = checkJSON(t, noEnv, "--ca", pki.CAFile, pg.URL("md5user", appPassword, "postgres")+"?require_auth=md5")
	require.Equal(t, exitInsecure, res.code, res.all())
	sev := severities(r)
	assert.Equal(t, []string{sevInsecure}, sev["password_encryption"], "readable by every role")
	assert.Equal(t, []string{sevUnchecked}, sev["ssl_min_protocol_version"])
	assert.Equal(t, []string{sevInsecure}, sev["tls_versions"], "the handshake probe needs no privilege")
	assert.Equal(t, []string{sevWarning}, sev["log_connections"], "readable by every role")
	assert.Equal(t, []string{sevInsecure}, sev["role_password"], "an md5 login shows an MD5-stored password")
	assert.Equal(t, []string{sevUnchecked}, sev["pg_hba"])
	assert.Contains(t, findings(r, sevUnchecked), "ssl_min_protocol_version not checked (needs pg_read_all_settings")
	assert.Contains(t, findings(r, sevUnchecked), "pg_hba.conf not checked (needs superuser")
}

// TestCheckAuditGoodServer: a server set up as the guide asks passes every
// audit check; the one line left is the test harness's own admin line.
func TestCheckAuditGoodServer(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{Conf: testutil.GuideConf(), HBA: []string{
		"hostnossl all all 0.0.0.0/0 reject",
		"hostnossl all all ::/0 reject",
		"host all all 127.0.0.1/32 scram-sha-256", // TLS only: the reject lines above take plaintext
		"hostssl all all ::1/128 scram-sha-256",
	}})
	createAuditor(t, pg)
	require.Equal(t, "'"+goodCiphers+"'", testutil.GuideConf()["ssl_ciphers"], "the harness's guide server uses what the audit recommends")

	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, pg.URL("auditor", appPassword, "postgres"))
	require.Equal(t, exitWarning, res.code, res.all())
	for _, f := range r.Findings {
		if f.Check == "pg_hba" && strings.Contains(f.Message, "line 1 `local all postgres trust`") {
			assert.Equal(t, sevWarning, f.Severity)
			continue
		}
		assert.Equal(t, sevOK, f.Severity, "%s: %s", f.Check, f.Message)
	}
	for _, check := range []string{"password_encryption", "ssl_min_protocol_version", "tls_versions", "ssl_ciphers", "log_connections", "role_password", "pg_hba", "plaintext"} {
		findingsOf(t, r, check)
	}
}
