#!/usr/bin/env bash
# Fuzzes every Fuzz target of the module briefly, one target at a time
# (go test accepts only one -fuzz target per run). Seed corpora live in each
# package's testdata/fuzz/<Target>/; failing inputs are written there too.
#
#   scripts/fuzz.sh                 # 10 s per target
#   FUZZTIME=2m scripts/fuzz.sh     # longer
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"

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
