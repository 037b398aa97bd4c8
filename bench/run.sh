#!/usr/bin/env bash
# Runs pgsecure's benchmarks against a real PostgreSQL 15 server and compares
# each pgsecure benchmark with its raw pgx counterpart (same server, same
# certificate, same run).
#
#   bench/run.sh                          # all benchmarks, 10 rounds
#   COUNT=20 BENCH='Connect|Query' bench/run.sh
#   OUT=results.txt bench/run.sh          # keep the raw output
#   BENCHTIME=2s bench/run.sh             # per benchmark and round (default 1s)
#
# Prints benchstat's comparison (column per impl) and a ratio table. Each
# round is one process that runs every side of a comparison once, so each
# round gives one ratio per comparison from samples taken minutes apart at
# most; the table reports the median of those per-round ratios and their
# spread (min-max): time = pgsecure/raw ns/op (target <= 1.05 for Connect),
# throughput = raw/pgsecure ns/op (target >= 0.99 for Query).
set -euo pipefail
cd "$(dirname "$0")/.."
count="${COUNT:-10}"
pattern="${BENCH:-.}"
benchtime="${BENCHTIME:-1s}"
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
  (cd bench && BENCH_REVERSE="$reverse" "$out.test" -test.run '^$' -test.bench "$pattern" -test.benchtime "$benchtime" -test.timeout 30m) | tee -a "$out"
done
rm -f "$out.test"

echo
echo "== benchstat: pgsecure vs raw pgx =="
"$benchstat" -col /impl -filter '/impl:(raw OR raw_query OR pgsecure OR pgsecure_query)' "$out"
echo
echo "== benchstat: secret fetch, cached vs uncached =="
"$benchstat" -col /impl -filter '/impl:(uncached OR cached)' "$out"

echo
echo "== ratios: median of $count interleaved rounds [min-max] =="
awk '
  /^Benchmark/ {
    name = $1; sub(/-[0-9]+$/, "", name)
    if (!match(name, /\/impl=[^\/]+/)) next
    impl = substr(name, RSTART + 6, RLENGTH - 6)
    base = substr(name, 1, RSTART - 1) substr(name, RSTART + RLENGTH)
    k = ++n[base, impl]            # one sample per round: the k-th is round k
    v[base, impl, k] = $3
    if (!((base, impl) in seen)) { seen[base, impl] = 1; order[base] = order[base] " " impl }
    if (!(base in bases)) { bases[base] = 1; list[++nb] = base }
  }
  # sort a[1..m] ascending (insertion sort: m is small)
  function sort(a, m,    i, j, x) {
    for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
  }
  function median(a, m) { return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END {
    printf "%-26s %-26s %6s %12s %12s %22s %22s\n", "benchmark", "compared", "rounds", "base ns/op", "ns/op", "time", "throughput"
    for (i = 1; i <= nb; i++) {
      b = list[i]; k = split(order[b], impls, " ")
      ref = ((b, "raw") in seen) ? "raw" : (((b, "uncached") in seen) ? "uncached" : impls[1])
      for (j = 1; j <= k; j++) {
        imp = impls[j]
        if (imp == ref) continue
        m = (n[b, ref] < n[b, imp]) ? n[b, ref] : n[b, imp]
        delete r; delete x0; delete x1
        for (q = 1; q <= m; q++) { r[q] = v[b, imp, q] / v[b, ref, q]; x0[q] = v[b, ref, q]; x1[q] = v[b, imp, q] }
        sort(r, m); sort(x0, m); sort(x1, m)
        printf "%-26s %-26s %6d %12.0f %12.0f %8.3f [%.3f-%.3f] %8.3f [%.3f-%.3f]\n", b, imp " vs " ref, m, median(x0, m), median(x1, m),
          median(r, m), r[1], r[m], 1 / median(r, m), 1 / r[m], 1 / r[1]
      }
    }
  }' "$out"
echo
echo "raw output: $out"
