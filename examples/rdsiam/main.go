// Command rdsiam connects to Amazon RDS or Aurora PostgreSQL with IAM
// database authentication: the password is a 15-minute token signed with the
// program's AWS credentials for one database user and endpoint, which RDS
// asks for as a cleartext password and pgsecure sends only over the verified
// TLS connection. No password is stored anywhere.
//
//	go run ./examples/rdsiam -secret 'rdsiam://app@mydb.abc123.eu-west-1.rds.amazonaws.com:5432?region=eu-west-1' \
//	    -dsn 'host=mydb.abc123.eu-west-1.rds.amazonaws.com dbname=app' -ca /etc/ssl/rds-global-bundle.pem
//
// AWS credentials come from the SDK's standard chain (environment, shared
// files, SSO, instance or task role); the role needs rds-db:connect for the
// user, who needs GRANT rds_iam.
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
	_ "github.com/pgsecure/pgsecure/secrets/awssm" // registers rdsiam://
)

func main() {
	secret := flag.String("secret", "", "rdsiam:// URI naming the database user and endpoint")
	dsn := flag.String("dsn", "", "connection settings other than the credentials (host=ENDPOINT dbname=...)")
	ca := flag.String("ca", "", "the RDS CA bundle")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *secret, *dsn, *ca); err != nil {
		fmt.Fprintln(os.Stderr, "rdsiam:", err)
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
