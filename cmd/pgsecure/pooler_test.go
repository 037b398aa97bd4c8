package main

import (
	"strconv"
	"testing"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckThroughPgBouncer: behind a real PgBouncer, check verifies the
// client→bouncer hop, says the peer is a pooler and what pg_stat_ssl then
// describes; with a plaintext bouncer→server hop it fails and names the fix.
func TestCheckThroughPgBouncer(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{HBA: []string{"host all all 127.0.0.1/32 scram-sha-256"}})
	pg.CreateRole(t, "app", appPassword)

	b := pki.StartPgBouncer(t, pg, testutil.BouncerOptions{Users: []string{"app"}})
	dsn := "postgres://app:" + appPassword + "@localhost:" + strconv.Itoa(b.Port) + "/postgres"
	r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
	require.Equal(t, exitWarning, res.code, res.all())
	assert.Contains(t, r.Pooler, "pooler")
	assert.Contains(t, findings(r, sevWarning), "whether the pooler verifies the server's certificate cannot be seen")
	assert.Contains(t, findings(r, sevOK), "to the pooler verified")
	assert.NotContains(t, res.all(), appPassword)

	plain := pki.StartPgBouncer(t, pg, testutil.BouncerOptions{Users: []string{"app"}, ServerTLSMode: "disable"})
	dsn = "postgres://app:" + appPassword + "@localhost:" + strconv.Itoa(plain.Port) + "/postgres"
	r, res = checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
	assert.Equal(t, exitInsecure, res.code, res.all())
	assert.Contains(t, r.Error, "ssl=false")
	assert.Contains(t, r.Error, "server_tls_sslmode")
	assert.NotContains(t, res.all(), appPassword)
}
