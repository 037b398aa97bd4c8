// Command pgsecure checks and prepares TLS for PostgreSQL connections made
// with the pgsecure library.
//
//	pgsecure check [flags] [DSN]     connect as package pgsecure does and report what was verified
//	pgsecure certs ca|server|client  create a CA, a server or a client certificate
//
// Run "pgsecure check -h" or "pgsecure certs -h" for the flags.
//
// Exit codes: 0 the check passed (or the certificates were written); 1 the
// connection was refused or the check found something insecure; 2 a usage or
// configuration error.
package main

import (
	"fmt"
	"io"
	"os"
)

// Exit codes.
const (
	exitOK       = 0
	exitInsecure = 1
	exitUsage    = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

const usage = `usage:
  pgsecure check [--ca FILE | --system-roots] [--pin SPKI] [--cert FILE --key FILE]
                 [--credentials URI] [--json] [--timeout D] [DSN]
  pgsecure certs ca     --out DIR [--cn NAME] [--rsa] [--force]
  pgsecure certs server --ca-dir DIR --out DIR --dns a,b --ip 1.2.3.4 [--rsa] [--days N] [--force]
  pgsecure certs client --ca-dir DIR --out DIR --user ROLE [--rsa] [--days N] [--force]
`

// run is the whole command: args without the program name, PG* variables
// (and the AWS/Vault ones the secret sources read themselves) from env.
func run(args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "check":
		return runCheck(args[1:], stdout, stderr, env)
	case "certs":
		return runCerts(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "pgsecure: unknown command %q\n%s", args[0], usage)
	return exitUsage
}
