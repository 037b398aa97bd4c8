package main

import (
	"crypto/md5"
	"encoding/hex"
	"testing"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckReportsWeakAuthentication runs check against real pg_hba.conf
// lines for md5, cleartext password and trust. pgsecure refuses them by
// default before sending anything; check still reports what the server asked
// for. With require_auth widened, the connection succeeds and the method is
// reported as a finding. Either way the verdict is the same: it comes from
// what the server asked for, not from whether pgsecure went on. An md5
// request shows the role's password is stored as an MD5 hash (PostgreSQL
// answers an md5 line with SCRAM for a SCRAM verifier): insecure, exit 1.
// A cleartext request is a warning, exit 5. Trust is insecure, exit 1.
func TestCheckReportsWeakAuthentication(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{HBA: []string{
		"hostssl all md5user 127.0.0.1/32 md5",
		"hostssl all pwuser 127.0.0.1/32 password",
		"hostssl all trustuser 127.0.0.1/32 trust",
		"hostssl all all 127.0.0.1/32 scram-sha-256",
		"hostnossl all all 0.0.0.0/0 reject",
	}})
	sum := md5.Sum([]byte(appPassword + "md5user"))
	pg.Exec(t, "CREATE ROLE md5user LOGIN PASSWORD 'md5"+hex.EncodeToString(sum[:])+"'")
	pg.CreateRole(t, "pwuser", appPassword)
	pg.CreateRole(t, "trustuser", "")

	for _, tc := range []struct {
		user, method, severity, finding string
		exit                            int
	}{
		{"md5user", "md5", sevWarning, "md5 password authentication, which is deprecated", exitInsecure},
		{"pwuser", "password", sevWarning, "the password in cleartext", exitWarning},
		{"trustuser", "none", sevInsecure, `the server let user "trustuser" in without any authentication`, exitInsecure},
	} {
		t.Run(tc.user, func(t *testing.T) {
			dsn := pg.URL(tc.user, appPassword, "postgres")
			r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
			assert.Equal(t, tc.exit, res.code, res.all())
			assert.Contains(t, r.Error, "which the policy (require_auth=scram-sha-256) does not allow")
			assert.Contains(t, r.Hint, "require_auth="+tc.method)
			require.NotNil(t, r.Auth, "the request was observed before pgsecure refused it")
			assert.Equal(t, tc.method, r.Auth.Method)
			assert.Contains(t, findings(r, tc.severity), tc.finding)
			assert.Equal(t, stageFailed, stageResults(r)[stageAuth])

			for _, audit := range []string{"auto", "off"} {
				r, res = checkJSON(t, noEnv, "--ca", pki.CAFile, "--audit", audit, dsn+"?require_auth="+tc.method)
				assert.Equal(t, tc.exit, res.code, "--audit=%s: %s", audit, res.all())
				assert.Empty(t, r.Error)
				require.NotNil(t, r.Auth)
				assert.Equal(t, tc.method, r.Auth.Method)
				assert.Contains(t, findings(r, tc.severity), tc.finding)
				assert.Contains(t, findings(r, sevWarning), "require_auth allows more than scram-sha-256", "the builder's warning is reported")
				assert.NotContains(t, res.all(), appPassword)
			}
		})
	}
	// The md5 request itself shows how the password is stored, whether
	// pgsecure went on (require_auth=md5) or not.
	for _, dsn := range []string{pg.URL("md5user", appPassword, "postgres"), pg.URL("md5user", appPassword, "postgres") + "?require_auth=md5"} {
		r, _ := checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
		rp := findingsOf(t, r, "role_password")
		require.Len(t, rp, 1)
		assert.Equal(t, sevInsecure, rp[0].Severity)
		assert.Contains(t, rp[0].Message, `the password of role "md5user" is stored as an MD5 hash (shown by the server asking for md5)`)
		assert.Contains(t, rp[0].Fix, "password_encryption = 'scram-sha-256'")
	}

	r, _ := checkJSON(t, noEnv, "--ca", pki.CAFile, pg.URL("pwuser", appPassword, "postgres")+"?require_auth=password")
	rp := findingsOf(t, r, "role_password")
	assert.Equal(t, sevUnchecked, rp[0].Severity)
	assert.Contains(t, rp[0].Message, "not checked (needs superuser, to read pg_authid)")
}
