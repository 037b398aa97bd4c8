// Command example connects to Azure Database for PostgreSQL flexible server
// with Microsoft Entra ID authentication: the password is a short-lived
// Entra ID token of the program's identity, which the server asks for as a
// cleartext password and pgsecure sends only over the verified TLS
// connection. No password is stored anywhere.
//
//	go run ./example -user app-identity \
//	    -dsn 'host=myserver.postgres.database.azure.com dbname=app' -ca azure-postgres-roots.pem
//
// The identity comes from azidentity's DefaultAzureCredential (AZURE_*
// variables, workload identity, managed identity, az login); -user is the
// Entra principal's name as created on the server.
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
	"github.com/pgsecure/pgsecure/secrets/azureiam"
)

func main() {
	user := flag.String("user", "", "the Entra principal's name on the server")
	dsn := flag.String("dsn", "", "connection settings other than the credentials (host=NAME.postgres.database.azure.com dbname=...)")
	ca := flag.String("ca", "", "the root CAs of Azure Database for PostgreSQL")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, err := azureiam.FromDefault(*user, nil)
	if err == nil {
		err = run(ctx, os.Stdout, src, *dsn, *ca)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "azureiam example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, src secrets.Source, dsn, caFile string) error {
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
