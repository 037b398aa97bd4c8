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
// rules), cannot downgrade to TLS below 1.2 or to password/md5/trust
// authentication (refused before any password or hash is sent). SCRAM is bound
// to the TLS channel when the server offers it, which defeats a relay even
// with a trusted certificate. After authentication, each connection asks the
// server (pg_stat_ssl for its own backend) whether it is encrypted, catching a
// TLS-terminating proxy that forwards in plaintext.
//
// Not protected against: a compromised server or CA key (pin the key with
// PinSPKI to narrow this), a malicious server lying in pg_stat_ssl (the
// server-side check guards against misconfiguration, not against the server),
// and anything beyond the last network hop: behind a pooler such as PgBouncer,
// pg_stat_ssl describes the pooler's connection to PostgreSQL, not the
// client's. Certificate revocation lists are not checked (sslcrl is refused
// rather than silently ignored).
//
// # Verification
//
// Every new physical connection is checked twice (package verify): before any
// credential is sent, the connection must be a completed TLS handshake, at or
// above the minimum version, whose chain re-verifies against the pinned roots;
// after authentication, the server must report ssl = true with the same TLS
// version. Refusals wrap ErrNotEncrypted (and ErrUntrustedServer for
// certificate problems, ErrInsecureAuth for authentication methods). The
// result is a verify.Report attached to the connection (verify.ReportOf),
// logged at Debug and passed to OnEvent callbacks. Nothing is checked per
// acquire: the checks run once per physical connection.
//
// A certificate without a subjectAltName for the host is accepted when its
// Common Name matches, as libpq does (the certificate `openssl req -x509`
// makes by default); raw pgx refuses it. Go's crypto/tls cannot express
// that rule, so pgsecure performs the complete verification itself in
// tls.Config.VerifyConnection (chain to the pinned roots, validity,
// extended key usage, host name) and turns the built-in check off; see
// tls.go.
//
// # Secret sources
//
// Builder.Credentials takes a secrets.Source: environment variables
// (secrets.Env), files such as Kubernetes secret mounts (secrets.File),
// HashiCorp Vault (secrets/vault) or AWS Secrets Manager and RDS IAM
// (secrets/awssm), chosen by configuration with secrets.Open and a URI. They
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
// verify-full). Code that tunes the pool can use Builder.Config and
// pgxpool.NewWithConfig; pgsecure's checks live on the ConnConfig and hold
// even if the pool-level hooks are replaced. database/sql users call OpenDB
// instead of sql.Open("pgx", dsn).
package pgsecure
