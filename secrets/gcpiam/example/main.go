// Command example connects to Cloud SQL for PostgreSQL or AlloyDB with IAM
// database authentication: the password is a short-lived OAuth 2.0 token of
// the program's Google identity, scoped to database login only, which the
// server asks for as a cleartext password and pgsecure sends only over the
// verified TLS connection. No password is stored anywhere.
//
//	go run ./example -secret 'gcpiam://?scope=cloudsql' \
//	    -dsn 'host=INSTANCE_DNS_NAME hostaddr=INSTANCE_IP dbname=app' -ca server-ca.pem
//
// The identity comes from Application Default Credentials
// (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, or
// the metadata server on Google Cloud), or from credentials_file= in the URI.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/secrets"
	_ "github.com/pgsecure/pgsecure/secrets/gcpiam" // registers gcpiam://
)

func main() {
	secret := flag.String("secret", "", "gcpiam:// URI")
	dsn := flag.String("dsn", "", "connection settings other than the credentials (host=NAME the certificate carries, dbname=...)")
	ca := flag.String("ca", "", "the instance's server CA certificates")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *secret, *dsn, *ca); err != nil {
		fmt.Fprintln(os.Stderr, "gcpiam example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, secretURI, dsn, caFile string) error {
	src, err := secrets.Open(ctx, secretURI)
	if err != nil {
		return err
	}
	pool, err := pgsecure.NewBuilder(dsn).RootCAFile(caFile).Credentials(src).Build(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var user string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
		return err
	}
	report, _ := pgsecure.ConnReport(conn.Conn())
	fmt.Fprintf(w, "connected as %s with a login token from %s\n", user, secrets.NameOf(src))
	fmt.Fprintf(w, "server %s, pg_stat_ssl ssl=%t, authentication %s, proof %s\n",
		report.ServerName, report.Server.SSL, report.AuthMethod, report.Proof)
	return nil
}
