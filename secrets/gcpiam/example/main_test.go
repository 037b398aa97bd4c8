package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets/gcpiam"
	"github.com/pgsecure/pgsecure/secrets/gcpiam/internal/gcptest"
)

// TestCloudSQLExample runs the example with a service account key whose
// token_uri is the loopback token server, against PostgreSQL checking the
// tokens through PAM as Cloud SQL does.
func TestCloudSQLExample(t *testing.T) {
	srv := gcptest.NewTokenServer(t, "orders@proj.iam.gserviceaccount.com", gcpiam.CloudSQL.Scope(), time.Hour)
	key := filepath.Join(t.TempDir(), "key.json")
	require.NoError(t, os.WriteFile(key, srv.KeyJSON(t), 0o600))
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.Exec(t, `CREATE ROLE "orders@proj.iam" LOGIN`)
	pam := pg.UsePAM(t, testutil.PAMLogin{Roles: []string{"orders@proj.iam"}, Check: srv.Check})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, srv.Client()) // trusts the token server's test certificate
	var out bytes.Buffer
	uri := "gcpiam://?scope=cloudsql&credentials_file=" + url.QueryEscape(key)
	require.NoError(t, run(ctx, &out, uri, fmt.Sprintf("host=localhost port=%d dbname=postgres", pg.Port), pki.CAFile))
	assert.Contains(t, out.String(), "connected as orders@proj.iam with a login token from gcpiam://?scope=cloudsql&user=orders@proj.iam")
	assert.Contains(t, out.String(), "pg_stat_ssl ssl=true, authentication password, proof server query")
	require.NotEmpty(t, pam.Attempts())
	assert.NoError(t, pam.Attempts()[0].Err)
	assert.NotContains(t, out.String(), pam.Attempts()[0].Password)
}
