package main

import (
	"testing"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckClientCertificate(t *testing.T) {
	t.Parallel()
	isolate(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{ClientCAPEM: pki.CA.CertPEM, HBA: []string{
		"hostssl all certonly 127.0.0.1/32 cert",
		"hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full",
		"hostnossl all all 0.0.0.0/0 reject",
	}})
	pg.CreateRole(t, "app", appPassword)
	pg.CreateRole(t, "certonly", "")
	cert, key, _ := pki.Client(t, "app")
	dsn := pg.URL("app", appPassword, "postgres")

	r, res := checkJSON(t, noEnv, "--audit=off", "--ca", pki.CAFile, "--cert", cert, "--key", key, "--pin", certgen.SPKIPin(pki.CA.Cert), dsn)
	require.Equal(t, exitOK, res.code, res.all())
	assert.Equal(t, "/CN=app", r.ClientDN)
	assert.Equal(t, "/CN=app", r.PgStatSSL.ClientDN)
	assert.Equal(t, opensslSerialOf(t, cert), r.PgStatSSL.ClientSerial, "pg_stat_ssl's decimal client_serial, as openssl prints serials")
	assert.Equal(t, "scram-sha-256", r.Auth.Method)
	assert.True(t, r.Auth.ChannelBinding)

	table := runCLI(t, noEnv, "check", "--audit=off", "--ca", pki.CAFile, "--cert", cert, "--key", key, dsn)
	assert.Contains(t, table.stdout, "client DN      /CN=app")

	// Without the certificate the server refuses the login: it did its job.
	r, res = checkJSON(t, noEnv, "--ca", pki.CAFile, dsn)
	assert.Equal(t, exitNoLogin, res.code, res.all())
	assert.Contains(t, r.Error, "certificate")
	assert.Contains(t, r.Hint, "pass --cert FILE --key FILE")
	assert.Equal(t, stagePassed, stageResults(r)[stageChain])
	assert.Equal(t, stageFailed, stageResults(r)[stageAuth])

	// A pin that matches nothing in the chain refuses the server.
	r, res = checkJSON(t, noEnv, "--ca", pki.CAFile, "--cert", cert, "--key", key, "--pin", certgen.SPKIPin(testutil.NewPKI(t).CA.Cert), dsn)
	assert.Equal(t, exitInsecure, res.code, res.all())
	assert.NotEmpty(t, r.Error)

	// pg_hba "cert": the certificate alone authenticates; no password request.
	certOnly, certOnlyKey, _ := pki.Client(t, "certonly")
	r, res = checkJSON(t, noEnv, "--audit=off", "--ca", pki.CAFile, "--cert", certOnly, "--key", certOnlyKey, pg.URL("certonly", "", "postgres")+"?require_auth=none")
	require.Equal(t, exitWarning, res.code, "require_auth=none is warned about: %s", res.all())
	assert.Equal(t, "none", r.Auth.Method)
	assert.Contains(t, findings(r, sevInfo), `the client certificate "/CN=certonly" authenticated`)
}
