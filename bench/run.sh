#!/usr/bin/env bash
# Runs pgsecure's benchmarks against a real PostgreSQL 15 server and compares
# each pgsecure benchmark with its raw pgx counterpart (same server, same
# certificate, same run).
#
#   bench/run.sh                          # all benchmarks, -count 6
#   COUNT=10 BENCH='Connect|Query' bench/run.sh
#   OUT=results.txt bench/run.sh          # keep the raw output
#
# Prints benchstat's comparison (column per impl) and a ratio table:
# time = pgsecure/raw ns/op (target <= 1.05 for Connect), throughput =
# raw/pgsecure ns/op (target >= 0.99 for Query).
set -euo pipefail
cd "$(dirname "$0")/.."
count="${COUNT:-6}"
pattern="${BENCH:-.}"
out="${OUT:-$(mktemp -t pgsecure-bench.XXXXXX)}"

if ! command -v benchstat >/dev/null; then
  go install golang.org/x/perf/cmd/benchstat@latest
fi
benchstat="$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
# One process per round, so raw and pgsecure samples interleave in time and a
# burst of load from elsewhere on the machine hits both alike.
go test -c -o "$out.test" ./bench
: > "$out"
# Even rounds run each comparison in reverse order (BENCH_REVERSE), so
# neither side always goes first.
for round in $(seq "$count"); do
  echo "round $round of $count" >&2
  reverse=""
  if [ $((round % 2)) -eq 0 ]; then reverse=1; fi
  (cd bench && BENCH_REVERSE="$reverse" "$out.test" -test.run '^$' -test.bench "$pattern" -test.timeout 30m) | tee -a "$out"
done
rm -f "$out.test"

echo
echo "== benchstat: pgsecure vs raw pgx =="
"$benchstat" -col /impl -filter '/impl:(raw OR raw_statssl OR pgsecure)' "$out"
echo
echo "== benchstat: secret fetch, cached vs uncached =="
"$benchstat" -col /impl -filter '/impl:(uncached OR cached)' "$out"
echo
echo "== benchstat: pool start by MinConns =="
"$benchstat" -col /min -filter '.name:PoolStart' "$out"

echo
echo "== ratios (means of $count runs) =="
awk '
  /^Benchmark/ {
    name = $1; sub(/-[0-9]+$/, "", name)
    base = name; impl = ""
    if (match(name, /\/impl=[^\/]+/)) {
      impl = substr(name, RSTART + 6, RLENGTH - 6)
      base = substr(name, 1, RSTART - 1) substr(name, RSTART + RLENGTH)
    }
    if (impl == "") next
    sum[base, impl] += $3; n[base, impl]++
    if (!((base, impl) in seen)) { seen[base, impl] = 1; order[base] = order[base] " " impl }
    if (!(base in bases)) { bases[base] = 1; list[++nb] = base }
  }
  END {
    printf "%-28s %-22s %14s %14s %8s %10s\n", "benchmark", "compared", "base ns/op", "ns/op", "time", "throughput"
    for (i = 1; i <= nb; i++) {
      b = list[i]; k = split(order[b], impls, " ")
      ref = impls[1]
      for (j = 2; j <= k; j++) {
        m0 = sum[b, ref] / n[b, ref]; m1 = sum[b, impls[j]] / n[b, impls[j]]
        printf "%-28s %-22s %14.0f %14.0f %8.3f %10.3f\n", b, impls[j] " vs " ref, m0, m1, m1 / m0, m0 / m1
      }
    }
  }' "$out"
echo
echo "raw output: $out"
