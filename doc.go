// Package pgsecure builds jackc/pgx/v5 connection pools whose every
// connection is encrypted with TLS, authenticated against a pinned CA with
// libpq's verify-full rules, and verified after connecting — and makes a
// service fail at startup when that is not possible.
//
// # Getting started
//
//	pool, err := pgsecure.NewBuilder("postgres://app@db.example.com:5432/prod").
//		RootCAFile("/etc/ssl/postgres/ca.crt").
//		Build(ctx) // returns only after one connection was opened and verified
//
// The connection string is libpq's (URL or keyword/value form) and the PG*
// environment variables are honoured as libpq does. There is no sslmode to
// choose: an absent sslmode means verify-full and any other value is
// refused with ErrInsecureConfig.
//
// # Threat model
//
// Protected against: a network attacker who can read, block or modify
// traffic between the service and PostgreSQL. Such an attacker cannot make
// pgsecure fall back to plaintext (there is no plaintext path: no
// sslmode=prefer fallback, no unix sockets, a server answering 'N' to the TLS
// request is refused), cannot present a certificate from another CA (only the
// pinned roots are trusted; the system roots only on request), cannot present
// a certificate of the pinned CA issued for another host (libpq's host name
// rules), cannot downgrade to TLS below 1.2, to a cipher suite outside
// tls.CipherSuites or to password/md5/trust authentication (refused before
// any password or hash is sent; the one exception is a cloud IAM login token,
// secrets.Credentials.LoginToken, which answers a cleartext-password request
// over the verified TLS connection only), and cannot make the client buffer anything
// before authentication beyond what libpq accepts there. SCRAM is bound
// to the TLS channel when the server offers it (SCRAM-SHA-256-PLUS), which
// defeats a relay even with a trusted certificate. After authentication, each
// connection has the server show that it terminates TLS itself (the
// server-side proof):
//
//   - by channel binding, when SCRAM-SHA-256-PLUS completed: PostgreSQL offers
//     PLUS only on a backend whose own connection is TLS, checks the client's
//     binding (the hash of the certificate the client verified) against its
//     own certificate inside the proof both sides sign, and refuses the "y"
//     downgrade flag on a TLS connection. The server has thereby proven,
//     without a query, that it terminates TLS with the very certificate the
//     client verified; a proxy that re-terminates TLS fails it even where the
//     server's own view would say ssl=true;
//   - otherwise by asking the server (pg_stat_get_activity for its own
//     backend, the row pg_stat_ssl shows): ssl must be true, with the client's
//     TLS version. This catches a TLS-terminating proxy that forwards in
//     plaintext. It runs for certificate authentication, servers that do not
//     offer PLUS, hooks that hide the TLS connection, Build's startup
//     connection, pools presenting a client certificate, and every connection
//     with QueryServerEveryConnection.
//
// Not protected against: a compromised server or CA key (pin the key with
// SPKIPins to narrow this; a party holding the server's private key passes
// both proofs), a malicious server lying about itself (the server-side proof
// guards against misconfiguration and relays, not against the server), and
// anything beyond the last network hop: behind a pooler such as PgBouncer
// the server's view describes the pooler's connection to PostgreSQL (the
// report names the pooler). Certificate revocation is checked only when
// revocation lists are given (sslcrl, sslcrldir, CRLFiles, CRLDir), as libpq
// checks them; OCSP is not used.
//
// # Verification
//
// Every new physical connection passes the same checks, in this order:
// before any credential is sent, the connection must be a completed TLS
// handshake, at or above the minimum version, whose chain leads to the pinned
// roots and names the host it was opened for (checked in the handshake and
// again after it, so a swapped TLS configuration cannot pass); the
// authentication method must be allowed; after authentication comes the
// server-side proof. Refusals wrap ErrNotEncrypted (and ErrUntrustedServer
// for certificate problems, ErrInsecureAuth for authentication methods), are
// logged once (unless Build returns them) and reach OnEvent as a
// ConnectionRefused with their RefusalKind. A login the server rejects
// (SQLSTATE 28P01 or 28000) is a LoginFailed event and a Warn line, at most
// one per cause per LoginLogInterval. Build returns its first connection's
// refusal as one *ConnectError: "pgsecure: HOST:PORT (user U, database D):
// problem; stage: S; fix: F", wrapping every typed error underneath (see the
// Errors section of docs/configuration.md). The result is a verify.Report
// attached to the connection (ConnReport; ReportOf for a pool) whose Proof
// says which proof it holds. Nothing is checked per acquire: the checks run
// once per physical connection.
//
// A certificate without a subjectAltName for the host is accepted when its
// Common Name matches, as libpq does (the certificate `openssl req -x509`
// makes by default); raw pgx refuses it. Go's crypto/tls cannot express
// that rule, so pgsecure performs the complete verification itself in
// tls.Config.VerifyConnection (chain to the pinned roots, validity,
// extended key usage, host name) and turns the built-in check off; a
// caller's own tls.Config is refused rather than merged. The chain is read as libpq's OpenSSL reads it: only self-signed
// certificates of sslrootcert are trust anchors, the others complete paths;
// the chain's DNS name constraints bind a host-like Common Name; an
// extended key usage must list serverAuth.
//
// # Secret sources
//
// Builder.Credentials takes a secrets.Source: environment variables
// (secrets.Env), files such as Kubernetes secret mounts (secrets.File),
// HashiCorp Vault (secrets/vault), AWS Secrets Manager and RDS IAM
// (secrets/awssm), and, in modules of their own, Cloud SQL and AlloyDB IAM
// (secrets/gcpiam) and Microsoft Entra ID (secrets/azureiam), chosen by
// configuration with secrets.Open and a URI. They
// are fetched per new connection through a cache, rotated without a restart,
// and never printed.
//
// # Migrating from pgxpool.New
//
// Replace
//
//	pool, err := pgxpool.New(ctx, dsn)
//
// with
//
//	pool, err := pgsecure.NewBuilder(dsn).RootCAFile(caFile).Build(ctx)
//
// and remove sslmode=... from the connection string (or set it to
// verify-full). To tune the pool (sizes, a tracer, hooks, ValidateConnect),
// use Builder.ConfigurePool: your settings are applied first and pgsecure
// installs its checks around them. Build and Config take a snapshot of the
// Builder: what is added to it afterwards does not reach a built pool.
// database/sql users call OpenDB instead of sql.Open("pgx", dsn).
package pgsecure
