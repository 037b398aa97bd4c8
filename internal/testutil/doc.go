// Package testutil provides test-only tools for pgsecure: a throwaway PKI, a
// real PostgreSQL 15 server per test, and hostile peers (test doubles) that
// behave as no honest PostgreSQL server would.
//
// # PostgreSQL
//
// StartPostgres gives each server a data directory of its own (a copy of an
// initdb template made once per installation) and a postmaster of its own on
// 127.0.0.1 with a free port and a private unix socket directory, and stops
// it when the test ends. Servers keep their files in /dev/shm when it is
// writable, otherwise in the temporary directory; $PGSECURE_TEST_TMPDIR
// overrides both. When the test process runs as root, the server runs as the "postgres"
// OS user. Server binaries are looked up in $PGSECURE_PG_BINDIR, then
// /usr/lib/postgresql/15/bin, then `pg_config --bindir`, then PATH.
//
// # Clusters and poolers
//
// PKI.StartCluster runs a primary and streaming standbys (pg_basebackup -R
// over verify-full TLS), each on its own loopback address with its own
// certificate; Postgres.Stop and Promote make a failover. PKI.StartPgBouncer
// runs Debian's PgBouncer (as the postgres OS user) in front of a server,
// TLS on both sides, SCRAM, session or transaction pooling.
//
// # Cloud IAM logins
//
// Postgres.UsePAM routes some roles' logins through a PAM service of their
// own (pam_exec with expose_authtok), so the server asks for the password in
// cleartext, as RDS, Cloud SQL, AlloyDB and Azure ask for an IAM token, and
// the test decides each login with a Go function (PAMLogin.Check), seeing
// exactly what arrived. QueryLoad keeps a pool busy while tokens rotate.
//
// # Hostile peers
//
// AnswerN, PlaintextServer, TLSPeer, WireTap, ALPNPeer and TLSVersionPeer are
// test doubles: each listens on 127.0.0.1, records the bytes the client sent,
// and stops when the test ends.
package testutil
