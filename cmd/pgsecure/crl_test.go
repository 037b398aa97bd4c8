package main

import (
	"context"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckReportsCRLs: with CRLs given (--crl, or PGSSLCRL as libpq reads
// it), check lists each CRL's issuer and nextUpdate, gives the revocation
// verdict, warns about a CRL close to its nextUpdate as about a certificate
// close to expiry, and fails a revoked server certificate naming its serial.
func TestCheckReportsCRLs(t *testing.T) {
	t.Parallel()
	isolate(t)
	openssl := testutil.RequireTool(t, "openssl", "openssl")
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "app", appPassword)
	dsn := pg.URL("app", appPassword, "postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	chain, err := testutil.ServerCertificates(ctx, pg.Addr())
	require.NoError(t, err)
	ca := testutil.NewOpenSSLCA(t, openssl, pki.CA)
	now := time.Now()

	t.Run("expiring CRL warns", func(t *testing.T) {
		// Valid for 3.5 hours, 30 minutes left: under a quarter of its life.
		crl := testutil.WritePEM(t, t.TempDir(), "ca.crl", ca.CRL(t, now.Add(-3*time.Hour), now.Add(30*time.Minute)))
		r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, "--crl", crl, "--audit=off", dsn)
		require.Equal(t, exitWarning, res.code, res.all())
		require.Len(t, r.CRLs, 1)
		assert.Equal(t, crl, r.CRLs[0].File)
		assert.Equal(t, pki.CA.Cert.Subject.String(), r.CRLs[0].Issuer)
		require.NotNil(t, r.CRLs[0].NextUpdate)
		assert.WithinDuration(t, now.Add(30*time.Minute), *r.CRLs[0].NextUpdate, 2*time.Second)
		assert.Equal(t, sevOK, findingsOf(t, r, "revocation")[0].Severity)
		exp := findingsOf(t, r, "crl_expiry")
		require.Len(t, exp, 1)
		assert.Equal(t, sevWarning, exp[0].Severity)
		assert.Contains(t, exp[0].Message, "expires in 0 hours")
		assert.Contains(t, exp[0].Fix, "openssl ca -gencrl")
		for _, f := range r.Findings {
			assert.NotContains(t, f.Message, crlExpiryLog, "the library's log line is not reported a second time")
		}
	})

	t.Run("table from PGSSLCRL", func(t *testing.T) {
		crl := testutil.WritePEM(t, t.TempDir(), "ca.crl", ca.CRL(t, time.Time{}, time.Time{}))
		res := runCLI(t, envOf(map[string]string{"PGSSLCRL": crl}), "check", "--ca", pki.CAFile, "--audit=off", dsn)
		require.Equal(t, exitOK, res.code, res.all())
		for _, want := range []string{"certificate revocation list [0]", "issuer", pki.CA.Cert.Subject.String(), "next update",
			"no certificate of the server's chain is revoked", "next update " + now.Add(30*24*time.Hour).UTC().Format("2006-01-02")} {
			assert.Contains(t, res.stdout, want)
		}
		t.Log("\n" + res.stdout)
	})

	t.Run("revoked server certificate", func(t *testing.T) {
		ca.Revoke(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[0].Raw}), "")
		crl := testutil.WritePEM(t, t.TempDir(), "ca.crl", ca.CRL(t, time.Time{}, time.Time{}))
		r, res := checkJSON(t, noEnv, "--ca", pki.CAFile, "--crl", crl, "--audit=off", dsn)
		require.Equal(t, exitInsecure, res.code, res.all())
		assert.Equal(t, stageFailed, stageResults(r)[stageChain])
		serial := strings.ToUpper(chain[0].SerialNumber.Text(16))
		if len(serial)%2 == 1 {
			serial = "0" + serial
		}
		assert.Contains(t, r.Error, "serial "+serial)
		assert.Contains(t, r.Error, "revoked")
		assert.Len(t, r.CRLs, 1, "the CRL is reported even when it refuses the server")
		assert.NotContains(t, res.all(), appPassword)
	})
}

// TestCheckUnusableCRLNamesFlag: a --crl file that holds no CRL is a usage
// error naming the flag, not the library method.
func TestCheckUnusableCRLNamesFlag(t *testing.T) {
	t.Parallel()
	isolate(t)
	dir := t.TempDir()
	ca := testutil.NewPKI(t).CAFile
	notCRL := writeFile(t, dir, "x.crl", "not a CRL\n")
	res := runCLI(t, noEnv, "check", "--ca", ca, "--crl", notCRL, "postgres://app@127.0.0.1:1/postgres")
	require.Equal(t, exitUsage, res.code, res.all())
	assert.Contains(t, res.all(), "--crl")
	assert.NotContains(t, res.all(), "CRLFiles")
}
