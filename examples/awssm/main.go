// Command awssm connects with credentials stored in AWS Secrets Manager, in
// the JSON shape RDS and its rotation functions write ({"username",
// "password", "host", "port", "dbname"}). The password never appears in the
// connection string, the process environment or a log line; after a
// rotation, pgsecure fetches the new version when the server rejects the
// old password.
//
//	go run ./examples/awssm -secret 'awssm://prod/db/app?region=eu-west-1' -dsn host=db.example.com -ca /etc/ssl/rds-ca.pem
//
// AWS credentials come from the SDK's standard chain (environment, shared
// files, SSO, instance or task role).
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
	_ "github.com/pgsecure/pgsecure/secrets/awssm" // registers awssm:// and rdsiam://
)

func main() {
	secret := flag.String("secret", "", "awssm:// URI of the secret")
	dsn := flag.String("dsn", "", "connection settings other than the credentials; must name a TCP host (host=db.example.com), which the secret's host, port and dbname override")
	ca := flag.String("ca", "", "CA certificate file that issued the database server's certificate")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *secret, *dsn, *ca); err != nil {
		fmt.Fprintln(os.Stderr, "awssm:", err)
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
	fmt.Fprintf(w, "connected as %s with credentials from %s\n", user, secrets.NameOf(src))
	fmt.Fprintf(w, "server %s, %s, pg_stat_ssl ssl=%t, authentication %s\n",
		report.Addr, report.TLSVersion, report.Server.SSL, report.AuthMethod)
	return nil
}
