package pgsecure_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/secrets"
)

// A service builds its pool once at startup. Build returns only after one
// connection was verified from both ends, so a database that cannot be
// reached securely stops the service here rather than at its first query.
func ExampleBuilder_Build() {
	ctx := context.Background()
	pool, err := pgsecure.NewBuilder(os.Getenv("DATABASE_URL")).
		RootCAFile("/etc/ssl/db-ca.crt").
		Build(ctx)
	if err != nil {
		log.Fatal(err) // wraps ErrInsecureConfig, ErrNotEncrypted or a connection error
	}
	defer pool.Close()

	conn, err := pool.Acquire(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Release()
	report, _ := pgsecure.ConnReport(conn.Conn())
	fmt.Println(report.TLSVersion, report.Server.SSL, report.Leaf().SPKIPin)
}

// Every sslmode weaker than verify-full is refused before anything is
// dialled, with the reason and the fix.
func ExampleNewBuilder_refusedSSLMode() {
	_, err := pgsecure.NewBuilder("postgres://app@db.example.com/app?sslmode=require").
		RootCAFile("/etc/ssl/db-ca.crt").
		Config(context.Background())
	fmt.Println(errors.Is(err, pgsecure.ErrInsecureConfig))
	fmt.Println(err)
	// Output:
	// true
	// pgsecure: sslmode (from connection string): "require" is weaker than verify-full: it encrypts but does not verify the server, so an interceptor can read everything; remove sslmode from the connection string or set sslmode=verify-full (pgsecure always uses verify-full)
}

// ConfigError says which setting was refused, where it came from, and how
// to fix it, for programs that present configuration errors themselves.
func ExampleConfigError() {
	_, err := pgsecure.NewBuilder("host=db.example.com dbname=app sslmode=prefer").
		SystemRoots().
		Config(context.Background())
	var ce *pgsecure.ConfigError
	if errors.As(err, &ce) {
		fmt.Println("setting:", ce.Setting)
		fmt.Println("from:   ", ce.From)
		fmt.Println("problem:", ce.Problem)
	}
	// Output:
	// setting: sslmode
	// from:    connection string
	// problem: "prefer" is weaker than verify-full: it falls back to plaintext when TLS fails
}

// Credentials come from a secret source chosen by configuration, here a
// Kubernetes or Docker secret mounted as files; the connection string holds
// no password.
func ExampleBuilder_Credentials() {
	ctx := context.Background()
	src, err := secrets.Open(ctx, "file:/run/secrets/db") // username, password files
	if err != nil {
		log.Fatal(err)
	}
	pool, err := pgsecure.NewBuilder("postgres://db.example.com:5432/app").
		RootCAFile("/etc/ssl/db-ca.crt").
		Credentials(src).
		Build(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
}

// database/sql code uses the same verified pool; sql.Open("pgx", dsn)
// would bypass it.
func ExampleOpenDB() {
	ctx := context.Background()
	pool, err := pgsecure.NewBuilder(os.Getenv("DATABASE_URL")).RootCAFile("/etc/ssl/db-ca.crt").Build(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	db := pgsecure.OpenDB(pool)
	defer db.Close()

	var ssl bool
	if err := db.QueryRowContext(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil {
		log.Fatal(err)
	}
	fmt.Println("encrypted:", ssl)
}

// OnEvent receives the connect's context and one struct per kind of event:
// a type switch picks the kinds a service counts. The context carries the
// values of the context Acquire or Ping was called with, and a pgx
// tracer's span.
func ExampleBuilder_OnEvent() {
	pool, err := pgsecure.NewBuilder(os.Getenv("DATABASE_URL")).RootCAFile("/etc/ssl/db-ca.crt").
		OnEvent(func(ctx context.Context, ev pgsecure.Event) {
			switch ev := ev.(type) {
			case pgsecure.ConnectionRefused:
				log.Printf("refused %s (%s at %s): %v", ev.Host, ev.Refusal, ev.Stage, ev.Err)
			case pgsecure.LoginFailed:
				log.Printf("login of %s to %s failed: SQLSTATE %s", ev.User, ev.Host, ev.SQLState)
			case pgsecure.CertificateExpiring:
				log.Printf("%s certificate %s expires in %d days", ev.Role, ev.Certificate.Subject, ev.DaysLeft)
			}
		}).
		Build(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
}
