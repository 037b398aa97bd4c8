// Command vault connects with dynamic credentials from HashiCorp Vault's
// database secrets engine: each run gets a fresh PostgreSQL role with a
// lease, which pgsecure renews while the pool lives; on exit the lease is
// revoked (revoke_on_close=true), so the role is dropped at once.
//
//	export VAULT_TOKEN=...   # or auth=approle / auth=kubernetes in the URI
//	go run ./examples/vault \
//	  -secret 'vault://vault.example.com:8200/database/creds/app?ca=/etc/vault/ca.pem&revoke_on_close=true' \
//	  -dsn 'host=db.example.com dbname=app' -ca /etc/ssl/db-ca.crt
//
// Vault's CA may also come from VAULT_CACERT.
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
	"github.com/pgsecure/pgsecure/secrets"
	_ "github.com/pgsecure/pgsecure/secrets/vault" // registers vault:// and vault+http://
)

func main() {
	secret := flag.String("secret", os.Getenv("PGSECURE_CREDENTIALS"), "vault:// URI of the credentials (default $PGSECURE_CREDENTIALS)")
	dsn := flag.String("dsn", os.Getenv("DATABASE_URL"), "connection string without credentials; must name a TCP host (default $DATABASE_URL)")
	ca := flag.String("ca", "", "CA certificate file that issued the database server's certificate")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *secret, *dsn, *ca); err != nil {
		fmt.Fprintln(os.Stderr, "vault:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, secretURI, dsn, caFile string) (err error) {
	src, err := secrets.Open(ctx, secretURI)
	if err != nil {
		return err
	}
	if c, ok := src.(secrets.Closer); ok {
		// Close stops the lease renewal (and revokes it with revoke_on_close=true).
		defer func() {
			if cerr := c.Close(context.WithoutCancel(ctx)); err == nil {
				err = cerr
			}
		}()
	}
	var (
		mu      sync.Mutex
		expires time.Time
	)
	pool, err := pgsecure.NewBuilder(dsn).RootCAFile(caFile).Credentials(src).OnEvent(func(_ context.Context, e pgsecure.Event) {
		if f, ok := e.(pgsecure.SecretFetched); ok {
			mu.Lock()
			expires = f.Expires
			mu.Unlock()
		}
	}).Build(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()

	var user string
	var ssl bool
	err = pool.QueryRow(ctx, `SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&user, &ssl)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(w, "connected as %s (a role Vault created for this lease), pg_stat_ssl ssl=%t\n", user, ssl)
	if !expires.IsZero() {
		fmt.Fprintf(w, "lease expires %s (pgsecure renews it while the pool is open)\n", expires.UTC().Format(time.RFC3339))
	}
	return nil
}
