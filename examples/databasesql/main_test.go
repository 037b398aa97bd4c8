package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDatabaseSQL(t *testing.T) {
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "app", "sql-example-pw")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, pg.URL("app", "sql-example-pw", "postgres"), pki.CAFile))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, connections)
	pids := map[string]bool{}
	for _, l := range lines {
		assert.Contains(t, l, "pg_stat_ssl ssl=true version=TLSv1.3, verified by pgsecure=true")
		pids[strings.Fields(l)[5]] = true
	}
	assert.Len(t, pids, connections, "distinct connections, each verified: %s", out.String())
	assert.NotContains(t, out.String(), "sql-example-pw")
}

func TestDatabaseSQLRefusesUnpinnedServer(t *testing.T) {
	pg := testutil.NewPKI(t).StartPostgres(t, testutil.PGOptions{})
	pg.CreateRole(t, "app", "sql-example-pw")
	other := testutil.NewPKI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, &out, pg.URL("app", "sql-example-pw", "postgres"), other.CAFile)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "server certificate")
	assert.Empty(t, out.String(), "no database/sql connection was handed out")
}
