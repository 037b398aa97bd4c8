#!/usr/bin/env bash
# Fuzzes every Fuzz target of the module briefly, one target at a time
# (go test accepts only one -fuzz target per run). Seed corpora live in each
# package's testdata/fuzz/<Target>/; failing inputs are written there too.
#
#   scripts/fuzz.sh                 # 50000 executions per target
#   FUZZTIME=2m scripts/fuzz.sh     # longer (a duration)
#
# The default is a count, not a duration: with a duration, Go 1.26's fuzzing
# coordinator can report a spurious "context deadline exceeded" when the time
# runs out while a worker is mid-input (golang/go#75804, fixed in Go 1.27).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-50000x}"

targets="$(go test -list '^Fuzz' ./... | awk '
  /^Fuzz/ { t[n++] = $1; next }
  /^ok/   { for (i = 0; i < n; i++) print $2, t[i]; n = 0 }
')"
if [ -z "$targets" ]; then
  echo "fuzz: no Fuzz targets found" >&2
  exit 1
fi
while read -r pkg target; do
  echo "fuzz: $target in $pkg for $fuzztime"
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
done <<< "$targets"
