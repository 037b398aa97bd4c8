// Command pgsecure checks PostgreSQL servers against the TLS guide and
// prepares and renews their certificates.
//
//	pgsecure check [flags] [DSN ...]   connect as package pgsecure does, audit the server, report
//	pgsecure certs ca|server|client    create a CA, a server or a client certificate
//	pgsecure certs renew               renew a certificate close to expiry
//	pgsecure version                   print the version and build information
//
// Run "pgsecure help" for the flags and the exit codes.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

const usage = `usage:
  pgsecure check [--ca FILE | --system-roots] [--pin SPKI] [--cert FILE --key FILE]
                 [--credentials URI] [--targets FILE] [--audit auto|off] [--json]
                 [--timeout D] [--probe-timeout D] [--parallel N] [--expiry-days N] [DSN ...]
  pgsecure certs ca     --out DIR [--cn NAME] [--rsa] [--force]
  pgsecure certs server --ca-dir DIR --out DIR --dns a,b --ip 1.2.3.4 [--rsa] [--days N] [--force]
  pgsecure certs client --ca-dir DIR --out DIR --user ROLE [--rsa] [--days N] [--force]
  pgsecure certs renew  --ca-dir DIR --cert FILE --key FILE [--within N] [--days N] [--new-key]
                        [--reload DSN [--ca FILE]] [--force]
  pgsecure certs renew  --cert FILE --key FILE --self-signed reissue|migrate|switch [--ca-dir DIR] ...
                        (a self-signed certificate, e.g. the guide's openssl req -x509)
  pgsecure version      the module version and build information

` + exitCodeHelp

// exitCodeHelp documents the exit codes (docs/cli.md repeats it).
const exitCodeHelp = `exit codes of check (with several findings or targets, the lowest non-zero one wins):
  0  secure: every check passed
  1  insecure: something is insecure, or the server certificate failed verification
     (e.g. the server asked for md5, which shows the role's password is stored
     as an MD5 hash, as good as the password to whoever reads it; or for no
     authentication at all)
  2  usage error: fix the command line, DSN or environment
  3  cannot log in: TLS was verified, but the login did not happen: the server
     refused it (password, client certificate, pg_hba.conf), or asked for a
     method pgsecure does not use (gss, sspi)
  4  unreachable: no answer, timeout, or the server is not accepting connections
  5  warning: weaker than the guide asks (an md5 or password line in pg_hba.conf,
     the password asked for in cleartext, weak ciphers, log_connections off,
     a certificate expiring soon)
  6  incomplete: everything checked passed, but something could not be checked
     (privileges; see the "not checked (needs ...)" findings)
  A login pgsecure declines (md5, password, trust: nothing is sent) gets the
  method's verdict, the same as with require_auth=METHOD in the DSN, which
  lets the check log in and audit the rest.
exit codes of certs:
  0  done; for renew also: nothing due (and, with --reload, the server presents
     the certificate on disk)
  1  failed: nothing written, or renewed but the server does not present the new
     certificate after the reload
  2  usage error: flags, files, a certificate not issued by --ca-dir's CA,
     a self-signed one without --self-signed
  3  --reload: the server refused the login or pg_reload_conf() (permission:
     the message gives the GRANT and the database to run it in)
  4  --reload: the server could not be reached
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
		return runCerts(args[1:], stdout, stderr, env)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "-version", "--version":
		printVersion(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "pgsecure: unknown command %q\n%s", args[0], usage)
	return exitUsage
}
