// Package bench holds pgsecure's benchmarks against a real PostgreSQL 15
// server; it has no API. Each pgsecure benchmark has a raw pgx counterpart
// run against the same server and certificate in the same process, named
// with an impl=pgsecure / impl=raw sub-benchmark so benchstat can compare
// them:
//
//	go test ./bench -run '^$' -bench . -count 6 > new.txt
//	benchstat -col /impl new.txt
//
// bench/run.sh does this and prints the ratios; RESULTS.md records a run.
// The fault soak, pgsecure beside raw pgx through restarts, rotations and
// network faults, is in bench/soak.
package bench
