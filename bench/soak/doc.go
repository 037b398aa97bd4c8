// Package soak is pgsecure's fault soak; it has no API. TestSoak drives a
// pgsecure pool and a raw pgx pool side by side against one real
// PostgreSQL 15 server on loopback, each through its own in-process fault
// proxy, with the same load: workers that alternate BEGIN / INSERT / COMMIT
// and SELECT, keeping a client ledger of every acknowledged commit. Then,
// one scenario after another, it injects a fault into both at once (server
// restart, pg_terminate_backend, password rotation in both orders, server
// certificate rotation, COMMITs the server holds past the client's
// deadline, network latency, connection resets, a black hole)
// and prints one table row per scenario and pool: operations attempted and
// failed, acknowledged commits lost, commits that did commit although the
// client got an error (and how many of those errors claimed SafeToRetry),
// recovery time, latency p50/p99 steady and during the fault, and the
// process's goroutines, open files and heap before and after.
//
// It runs only when asked:
//
//	SOAK=smoke go test -count=1 -run TestSoak -v ./bench/soak   # ~60 s, run by scripts/test.sh
//	SOAK=full  go test -count=1 -run TestSoak -v -timeout 20m ./bench/soak
//
// SOAK_OUT=file also writes the table there; SOAK_ONLY=text runs only the
// scenarios whose name contains text. RESULTS.md in the parent
// directory records a full run.
package soak
