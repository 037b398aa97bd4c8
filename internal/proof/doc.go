// Package proof holds pgsecure's adversarial and operational tests; it has no
// API. Every test runs against real PostgreSQL 15 servers started per test
// (and, where no honest server would behave that way, hostile test doubles
// from internal/testutil).
//
// # Hostile matrix
//
// One command runs every hostile case and prints a pass table (row, expected
// sentinel, whether the password appeared in cleartext on the wire, result):
//
//	go test ./internal/proof -run TestHostileMatrix -v
//
// (scripts/matrix.sh runs exactly that.) Each row records every byte the
// client sent between itself and the hostile end and fails if the password
// appears in it.
//
// # libpq parity
//
// TestLibpqParity runs the real psql (libpq) and pgsecure with
// sslmode=verify-full against the same server for each certificate and host
// name case and requires both to accept or refuse alike.
//
// # Faults and load
//
// TestFault* restart PostgreSQL under load, kill backends, swap the server's
// certificate for one from another CA, add latency and cut connections with
// an in-process proxy, and break the secret source. TestLoad runs many
// goroutines through one pool and checks for errors, goroutine leaks and heap
// growth.
//
// # High availability and poolers
//
// TestTargetSessionAttrs*, TestLoadBalanceHosts*, TestFailoverUnderLoad,
// TestChurnAcrossCluster and TestPgBouncer* run against a real primary with
// streaming standbys and a real PgBouncer (ha_*_test.go).
//
// With CI=true a test fails when PostgreSQL (or psql) cannot be run; without
// it such a test is skipped.
package proof
