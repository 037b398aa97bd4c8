#!/usr/bin/env bash
# Runs the hostile matrix against real PostgreSQL 15 servers and hostile test
# doubles, and prints its pass table (row, expected sentinel, whether the
# password appeared in cleartext on the wire, result).
#
#   scripts/matrix.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -count=1 ./internal/proof -run TestHostileMatrix -v "$@"
