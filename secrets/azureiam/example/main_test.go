package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets/azureiam"
	"github.com/pgsecure/pgsecure/secrets/azureiam/internal/entratest"
)

// TestEntraIDExample runs the example's connection with a client secret
// credential whose authority is the loopback test authority, against
// PostgreSQL checking the tokens through PAM as Azure does. (main's
// DefaultAzureCredential cannot be pointed at a loopback authority without
// options: it would ask login.microsoftonline.com for instance discovery.)
func TestEntraIDExample(t *testing.T) {
	a := entratest.NewAuthority(t, time.Hour)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.Exec(t, `CREATE ROLE "app-identity" LOGIN`)
	pam := pg.UsePAM(t, testutil.PAMLogin{Roles: []string{"app-identity"}, Check: a.Check})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	src := azureiam.New(a.Credential(t), "app-identity")
	require.NoError(t, run(ctx, &out, src, fmt.Sprintf("host=localhost port=%d dbname=postgres", pg.Port), pki.CAFile))
	assert.Contains(t, out.String(), "connected as app-identity with a login token from azureiam://?user=app-identity")
	assert.Contains(t, out.String(), "pg_stat_ssl ssl=true, authentication password, proof server query")
	require.NotEmpty(t, pam.Attempts())
	assert.NoError(t, pam.Attempts()[0].Err)
	assert.NotContains(t, out.String(), pam.Attempts()[0].Password)
}
