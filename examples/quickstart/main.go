// Command quickstart starts a throwaway PostgreSQL 15 with TLS certificates it
// generates, connects through pgsecure, and prints the verification report.
// It then shows two connections pgsecure refuses.
//
//	go run ./examples/quickstart
//
// It needs the PostgreSQL 15 server binaries (Debian: apt-get install -y
// postgresql). Nothing is left behind when it exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	// 1. A CA and a server certificate for this machine's loopback names.
	ca, err := certgen.NewCA("quickstart CA", certgen.ECDSAP256)
	if err != nil {
		return err
	}
	server, err := ca.Issue(testutil.LocalServerOptions())
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pgsecure-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		return err
	}

	// 2. A real PostgreSQL that only accepts TLS + scram-sha-256.
	fmt.Fprintln(w, "starting a throwaway PostgreSQL with TLS on 127.0.0.1 ...")
	pg, err := testutil.Start(testutil.PGOptions{ServerCertPEM: server.CertPEM, ServerKeyPEM: server.KeyPEM})
	if err != nil {
		return err
	}
	defer pg.Close()
	admin, err := pg.Admin(ctx)
	if err != nil {
		return err
	}
	_, err = admin.Exec(ctx, "CREATE ROLE app LOGIN PASSWORD 'quickstart-password'")
	admin.Close(ctx)
	if err != nil {
		return err
	}

	// 3. The three lines a service needs.
	dsn := fmt.Sprintf("postgres://app:quickstart-password@localhost:%d/postgres", pg.Port)
	pool, err := pgsecure.NewBuilder(dsn).RootCAFile(caFile).Build(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()

	// 4. Confirm encryption: pgsecure already asked the server; print it.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	report, _ := pgsecure.ConnReport(conn.Conn())
	conn.Release()
	fmt.Fprintf(w, "\nconnected through pgsecure; verification report:\n%s\n", report)

	// 5. What pgsecure refuses.
	_, err = pgsecure.NewBuilder(dsn + "?sslmode=require").RootCAFile(caFile).Build(ctx)
	fmt.Fprintf(w, "sslmode=require refused (ErrInsecureConfig=%t):\n  %v\n", errors.Is(err, pgsecure.ErrInsecureConfig), err)
	other, err := certgen.NewCA("impostor CA", certgen.ECDSAP256)
	if err != nil {
		return err
	}
	_, err = pgsecure.NewBuilder(dsn).RootCAPEM(other.CertPEM).Build(ctx)
	fmt.Fprintf(w, "unpinned CA refused (ErrUntrustedServer=%t):\n  %v\n", errors.Is(err, pgsecure.ErrUntrustedServer), err)
	return nil
}
