package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgsecure/pgsecure/secrets"
)

func ExampleCredentials() {
	c := secrets.Credentials{User: "app", Password: secrets.NewSecret("correct horse battery staple"), Host: "db.example.com", Port: 5432}
	fmt.Println(c)
	fmt.Printf("%#v\n", c.Password)
	// Output:
	// Credentials{User:"app" Password:[REDACTED] Host:"db.example.com" Port:5432 Database:"" Expires:never Version:"" Source:""}
	// [REDACTED]
}

func ExampleParseJSON() {
	c, err := secrets.ParseJSON([]byte(`{"username":"app","password":"s3cr3t","host":"db.example.com","port":5432,"dbname":"app"}`))
	fmt.Println(c.User, c.Password, c.Host, c.Port, c.Database, err)

	_, err = secrets.ParseJSON([]byte(`{"username":"app","password":"s3cr3t`))
	fmt.Println(err)
	fmt.Println(errors.Is(err, secrets.ErrInvalid))
	// Output:
	// app [REDACTED] db.example.com 5432 app <nil>
	// pgsecure: JSON secret: is not valid JSON (syntax error at byte offset 36); a file caught mid-write is re-read when it changes
	// true
}

func ExampleChain() {
	// Kubernetes-mounted secret first, libpq's environment variables if it is not mounted.
	src := secrets.Chain(secrets.File("/run/secrets/pgsecure-example-not-mounted"), secrets.EnvFrom(func(k string) (string, bool) {
		return map[string]string{"PGUSER": "app", "PGPASSWORD": "s3cr3t"}[k], true
	}))
	c, err := src.Credentials(context.Background())
	fmt.Println(c.User, c.Password, c.Source, err)
	// Output:
	// app [REDACTED] env <nil>
}

func ExampleOpen() {
	_, err := secrets.Open(context.Background(), "vault://app:s3cr3t@vault.example.com:8200/database/creds/app")
	fmt.Println(err)
	_, err = secrets.Open(context.Background(), "awssm://prod/db")
	fmt.Println(errors.Is(err, secrets.ErrUnknownScheme))
	// Output:
	// pgsecure: secret source URI (scheme "vault") carries a password in its user-info part; configuration must not hold passwords: keep it in the secret backend
	// true
}

func ExampleCached() {
	src := secrets.Static(secrets.Credentials{User: "app", Password: secrets.NewSecret("s3cr3t"), Version: "lease-1",
		Expires: time.Now().Add(time.Hour)})
	cache := secrets.Cached(src, secrets.CacheOptions{})
	c, _ := cache.Credentials(context.Background())
	fmt.Println(c.Version, c.Password)
	// Output:
	// lease-1 [REDACTED]
}
