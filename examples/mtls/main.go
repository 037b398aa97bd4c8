// Command mtls connects with a client certificate (mutual TLS) to a
// PostgreSQL server whose pg_hba.conf requires one:
//
//	hostssl all all 0.0.0.0/0 scram-sha-256 clientcert=verify-full
//
// The server checks the certificate against its ssl_ca_file and that its CN
// is the role name; the client still verifies the server (verify-full,
// pinned CA). Certificates can be made with `pgsecure certs ca`, `certs
// server` and `certs client --user ROLE`.
//
//	go run ./examples/mtls -dsn 'postgres://app@db.example.com/app' \
//	  -ca ca.crt -cert client-app.crt -key client-app.key
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pgsecure/pgsecure"
)

func main() {
	dsn := flag.String("dsn", os.Getenv("DATABASE_URL"), "connection string (default $DATABASE_URL)")
	ca := flag.String("ca", "", "CA certificate file that issued the server's certificate")
	cert := flag.String("cert", "", "client certificate file (CN = role name)")
	key := flag.String("key", "", "client private key file (mode 0600)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *dsn, *ca, *cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, "mtls:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, dsn, caFile, certFile, keyFile string) error {
	pool, err := pgsecure.NewBuilder(dsn).
		RootCAFile(caFile).
		ClientCertFiles(certFile, keyFile). // re-read when renewed on disk
		Build(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()

	var user, clientDN, issuerDN string
	err = pool.QueryRow(ctx, `SELECT current_user, client_dn, issuer_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).
		Scan(&user, &clientDN, &issuerDN)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "connected as %s; the server verified client certificate %s issued by %s\n", user, clientDN, issuerDN)
	return nil
}
