package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMutualTLS(t *testing.T) {
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{ClientCAPEM: pki.CA.CertPEM, HBA: []string{
		"hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full",
		"hostnossl all all 0.0.0.0/0 reject",
	}})
	pg.CreateRole(t, "app", "mtls-example-pw")
	pg.CreateRole(t, "intruder", "mtls-example-pw")
	cert, key, _ := pki.Client(t, "app")
	dsn := pg.URL("app", "mtls-example-pw", "postgres")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, dsn, pki.CAFile, cert, key))
	assert.Equal(t, "connected as app; the server verified client certificate /CN=app issued by /CN=pgsecure test CA\n", out.String())

	// clientcert=verify-full: the certificate's CN must be the role, so
	// app's certificate cannot log in as intruder even with intruder's right
	// password; PostgreSQL reports it as a failed login.
	err := run(ctx, &out, pg.URL("intruder", "mtls-example-pw", "postgres"), pki.CAFile, cert, key)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "SQLSTATE 28P01")

	// A certificate from a CA the server does not know is refused too.
	otherCert, otherKey, _ := testutil.NewPKI(t).Client(t, "app")
	require.Error(t, run(ctx, &out, dsn, pki.CAFile, otherCert, otherKey))
}
