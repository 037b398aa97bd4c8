package pgsecure_test

import (
	"context"
	"fmt"
	"log"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReportOfPool reads the report of a real pool in one call and checks it
// describes the very connection the pool hands out next, as the server sees
// it.
func TestReportOfPool(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).MaxConns(1).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	r, err := pgsecure.ReportOf(ctx, pool)
	require.NoError(t, err)
	assert.Equal(t, "localhost", r.ServerName)
	assert.True(t, r.Server.SSL, "Build's connection was queried: the report carries the server's view")

	var pid uint32
	var version string
	require.NoError(t, pool.QueryRow(ctx, "SELECT pg_backend_pid(), version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&pid, &version))
	assert.Equal(t, pid, r.BackendPID, "MaxConns(1): the report is of the pool's only connection")
	assert.Equal(t, version, r.TLSVersion)
	assert.Equal(t, int32(0), pool.Stat().AcquiredConns(), "ReportOf released the connection")

	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer c.Release()
	cr, err := pgsecure.ConnReport(c.Conn())
	require.NoError(t, err)
	assert.Equal(t, r.BackendPID, cr.BackendPID)
}

// TestReportOfUnverifiedPool: a pool pgsecure did not build (here plain pgx
// with verify-full against the same server) has no report, and says so.
func TestReportOfUnverifiedPool(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	pool, err := pgxpool.New(ctx, dsn(pg, "localhost")+"?sslmode=verify-full&sslrootcert="+pki.CAFile)
	require.NoError(t, err)
	defer pool.Close()

	_, err = pgsecure.ReportOf(ctx, pool)
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Contains(t, err.Error(), "carries no verification report")
	assert.NotContains(t, err.Error(), appPassword)

	conn, err := pgx.Connect(ctx, dsn(pg, "localhost")+"?sslmode=verify-full&sslrootcert="+pki.CAFile)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = pgsecure.ConnReport(conn)
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
}

// TestReportOfClosedPool: an Acquire error is returned wrapped, not a
// report.
func TestReportOfClosedPool(t *testing.T) {
	t.Parallel()
	pg, pki := server(t, testutil.LocalServerOptions())
	ctx := ctxT(t)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Build(ctx)
	require.NoError(t, err)
	pool.Close()
	_, err = pgsecure.ReportOf(ctx, pool)
	require.Error(t, err)
	assert.NotErrorIs(t, err, pgsecure.ErrNotEncrypted, "the pool's own error, not a missing report")
	assert.ErrorContains(t, err, "pgsecure: acquiring a connection for its verification report: closed pool")
}

// ReportOf answers "how is this pool's database connection protected?" in
// one call, e.g. for a status page or a startup log line.
func ExampleReportOf() {
	ctx := context.Background()
	pool, err := pgsecure.NewBuilder("postgres://app@db.example.com/app").
		RootCAFile("/etc/ssl/db-ca.crt").
		Build(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	report, err := pgsecure.ReportOf(ctx, pool)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report.TLSVersion, report.Proof, report.Leaf().Subject, report.Leaf().NotAfter)
}
