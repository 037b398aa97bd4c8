package pgsecure_test

import (
	"testing"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenDBUsesVerifiedPool(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	db := pgsecure.OpenDB(pool)
	defer db.Close()
	var ssl bool
	require.NoError(t, db.QueryRowContext(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl))
	assert.True(t, ssl)
	assert.GreaterOrEqual(t, pool.Stat().TotalConns(), int32(1), "database/sql borrowed from the pgsecure pool")
}
