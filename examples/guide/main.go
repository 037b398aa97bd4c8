// Command guide connects the way the seed guide "Securing PostgreSQL
// connections" sets things up, with nothing but libpq's PG* variables:
//
//	# on the server (the guide's command; CN = the host name clients use)
//	openssl req -newkey rsa:4096 -nodes -keyout server.key -x509 -days 365 -out server.crt -subj /CN=db.example.com
//	# postgresql.conf: ssl = on, ssl_cert_file = 'server.crt', ssl_key_file = 'server.key'
//	# pg_hba.conf:     hostssl all all 0.0.0.0/0 scram-sha-256
//
//	# on the client: the self-signed server.crt is its own CA
//	export PGHOST=db.example.com PGUSER=app PGDATABASE=app PGPASSWORD=...
//	export PGSSLROOTCERT=server.crt
//	go run ./examples/guide
//
// The certificate names the host only in its Common Name (no
// subjectAltName), which libpq accepts and raw pgx refuses; pgsecure follows
// libpq. PGSSLMODE may be unset or verify-full: pgsecure always verifies.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pgsecure/pgsecure"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "guide:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	pool, err := pgsecure.NewBuilder("").Build(ctx) // everything from PG* variables, as libpq
	if err != nil {
		return err
	}
	defer pool.Close()
	c, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	r, _ := pgsecure.ConnReport(c.Conn())
	fmt.Fprint(w, r)
	return nil
}
