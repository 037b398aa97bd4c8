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
// TestLibpqParityMatrix runs a generated matrix of certificate shapes
// (leaf names, chains and sslrootcert forms, name constraints, issuer and
// usage extensions, validity, key types, host spellings) with the real psql
// (libpq) and pgsecure, both with sslmode=verify-full, against one server
// that reloads its certificate per group of rows, and requires both to
// accept or refuse alike (parity_matrix_*_test.go; -v prints the table).
// TestLibpqParityTrustAnchors, TestLibpqParityCommonNameConstraints and
// TestLibpqParityRSAPSS replay, with certificates made by the openssl command
// line, the defects and the difference the matrix is built around.
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
