// Command readme is the complete program README.md shows: a pgx pool that
// is verify-full against the CA sslrootcert names, or the service does not
// start.
//
//	DATABASE_URL='postgres://app@db.example.com:5432/prod?sslrootcert=/etc/ssl/postgres/ca.crt' \
//	PGPASSWORD=... go run ./examples/readme
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/pgsecure/pgsecure"
)

func main() {
	if err := run(context.Background(), os.Getenv("DATABASE_URL")); err != nil {
		log.Fatal(err) // says what is wrong and how to fix it; never contains a password
	}
}

func run(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Returns only after one connection was opened and verified encrypted from both ends.
	pool, err := pgsecure.NewBuilder(dsn).Build(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()

	var ssl bool
	err = pool.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl)
	if err != nil {
		return err
	}
	fmt.Println("connected; the server says this connection is encrypted:", ssl)
	return nil
}
