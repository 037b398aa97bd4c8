#!/usr/bin/env bash
# Runs every test of the repository, starting the servers they need itself:
# formatting and vet, the race-enabled suite against real PostgreSQL 15
# clusters (including the hostile matrix, libpq parity, faults and load in
# internal/proof), brief fuzzing, a benchmark smoke run, the suite again
# with the oldest Go toolchain go.mod allows, the OpenTelemetry module, and
# the Vault integration module.
#
#   scripts/test.sh          # everything
#   scripts/test.sh -short   # skip the Vault module (its first build takes ~15 min)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
  echo "gofmt: these files need formatting:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
go test -race -count=1 ./...
# The hostile matrix again, verbosely, for its pass table in the log.
scripts/matrix.sh 2>&1 | grep -v '^[0-9]\{4\}/[0-9][0-9]/'  # drop the refusal log lines
# Each fuzz target briefly; benchmarks once each so they cannot rot.
scripts/fuzz.sh
go test -run '^$' -bench . -benchtime 1x ./bench >/dev/null
# The fault soak, briefly (about a minute): pgsecure and raw pgx side by side
# through restarts, rotations and network faults (bench/soak; the full run
# is recorded in bench/RESULTS.md).
SOAK=smoke go test -count=1 -run '^TestSoak$' -timeout 5m -v ./bench/soak | grep -v '^=== '
# Again with the oldest toolchain go.mod allows (its go line), so that the
# version consumers are told they may use really builds and passes.
oldest="go$(awk '$1 == "go" { print $2; exit }' go.mod)"
GOTOOLCHAIN="$oldest" go vet ./...
GOTOOLCHAIN="$oldest" go test -count=1 ./...

# The OpenTelemetry module (its own go.mod, so the root links no OTel code),
# against this checkout through otel/go.work, then as a consumer builds it:
# through the module proxy protocol at the root version its go.mod requires.
(cd otel && go vet ./... && go test -race -count=1 ./...)
scripts/consumer.sh
# The cloud IAM token sources, each its own module (so the root links no
# cloud SDK), against this checkout through their go.work, logging in to
# PostgreSQL through PAM as the clouds' servers do.
# (`go mod tidy -diff` cannot resolve the untagged root version; scripts/tidy-nested.sh
# checks go.mod and go.sum as a consumer resolves them.)
for m in secrets/gcpiam secrets/azureiam; do
  scripts/tidy-nested.sh "$m"
  (cd "$m" && go vet ./... && go test -race -count=1 ./...)
done
# GORM, sqlx, goose, golang-migrate and sqlc-style code on a pgsecure pool
# (docs/ecosystem.md), in a test module of its own.
(cd internal/ecosystem && go mod tidy -diff && go vet ./... && go test -race -count=1 ./...)

if [ "${1:-}" != "-short" ] && [ -f internal/vaultit/go.mod ]; then
  (cd internal/vaultit && go vet ./... && go test -count=1 -timeout 30m ./...)
fi
