// Command databasesql shows database/sql code running on a pgsecure pool:
// every *sql.DB connection is a verify-full TLS connection that pgsecure
// checked from both ends. There is no sql.Open("pgx", dsn) anywhere: that
// would open connections outside the pool, without pgsecure's checks.
//
//	go run ./examples/databasesql -dsn 'postgres://app@db.example.com/app' -ca /etc/ssl/db-ca.crt
//
// The password comes from the DSN or PGPASSWORD, as with libpq.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pgsecure/pgsecure"
)

func main() {
	dsn := flag.String("dsn", os.Getenv("DATABASE_URL"), "connection string (default $DATABASE_URL; empty: the PG* variables)")
	ca := flag.String("ca", "", "CA certificate file (default: sslrootcert or $PGSSLROOTCERT)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *dsn, *ca); err != nil {
		fmt.Fprintln(os.Stderr, "databasesql:", err)
		os.Exit(1)
	}
}

// connections is how many database/sql connections run holds at once, so
// that the pool opens (and pgsecure verifies) more than one.
const connections = 3

func run(ctx context.Context, w io.Writer, dsn, caFile string) error {
	var mu sync.Mutex
	verified := map[uint32]bool{} // backend pids pgsecure verified
	b := pgsecure.NewBuilder(dsn).MaxConns(connections).OnEvent(func(_ context.Context, e pgsecure.Event) {
		if v, ok := e.(pgsecure.ConnectionVerified); ok {
			mu.Lock()
			verified[v.Report.BackendPID] = true
			mu.Unlock()
		}
	})
	if caFile != "" {
		b.RootCAFile(caFile)
	}
	pool, err := b.Build(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()

	db := pgsecure.OpenDB(pool) // instead of sql.Open("pgx", dsn)
	defer db.Close()

	for i := range connections {
		conn, err := db.Conn(ctx) // held until run returns: each is a different connection
		if err != nil {
			return err
		}
		defer conn.Close()
		var (
			pid     uint32
			ssl     bool
			version string
		)
		err = conn.QueryRowContext(ctx,
			`SELECT pid, ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&pid, &ssl, &version)
		if err != nil {
			return err
		}
		mu.Lock()
		ok := verified[pid]
		mu.Unlock()
		fmt.Fprintf(w, "database/sql connection %d: backend pid %d, pg_stat_ssl ssl=%t version=%s, verified by pgsecure=%t\n",
			i+1, pid, ssl, version, ok)
	}
	return nil
}
