#!/usr/bin/env bash
# Checks that a nested module's go.mod and go.sum are what `go mod tidy`
# makes of them as a consumer resolves the module: against the root module at
# the version the nested go.mod requires, served from this checkout by a
# throw-away file-system proxy (internal/tools/modproxy), with no go.work.
# (`go mod tidy -diff` in the module itself cannot resolve that version
# before it is tagged.)
#
#   scripts/tidy-nested.sh secrets/gcpiam          # check
#   scripts/tidy-nested.sh -w secrets/gcpiam       # rewrite go.mod and go.sum
set -euo pipefail
cd "$(dirname "$0")/.."

write=false
if [ "${1:-}" = "-w" ]; then write=true; shift; fi
dir="$1"
root_module=github.com/pgsecure/pgsecure
want="$(awk -v m="$root_module" '$1 == m { print $2 } $1 == "require" && $2 == m { print $3 }' "$dir/go.mod")"
if [ -z "$want" ]; then
  echo "tidy check: $dir/go.mod does not require $root_module" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The root module's files (git lists nested modules' files too; the proxy
# leaves out directories with a go.mod of their own).
git ls-files -co --exclude-standard | go run ./internal/tools/modproxy -dir . -version "$want" -proxy "$work/proxy" >/dev/null
mkdir "$work/m"
(cd "$dir" && git ls-files -co --exclude-standard | while read -r f; do
  [ -f "$f" ] && mkdir -p "$work/m/$(dirname "$f")" && cp "$f" "$work/m/$f"
done)
rm -f "$work/m/go.work" "$work/m/go.work.sum"
# The root version's checksum is known only once it is tagged; its lines are
# compared without it.
grep -v "^$root_module " "$dir/go.sum" > "$work/m/go.sum" || true
(cd "$work/m" && GOWORK=off GOFLAGS=-modcacherw GONOSUMDB="$root_module" \
  GOPROXY="file://$work/proxy,file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)" \
  GOMODCACHE="$work/modcache" go mod tidy 2>&1 | grep -v '^go: downloading' >&2 || true)
grep -v "^$root_module " "$work/m/go.sum" > "$work/go.sum" || true
if $write; then
  cp "$work/m/go.mod" "$dir/go.mod"
  cp "$work/go.sum" "$dir/go.sum"
  exit 0
fi
diff -u "$dir/go.mod" "$work/m/go.mod" || { echo "tidy check: run scripts/tidy-nested.sh -w $dir" >&2; exit 1; }
diff -u "$dir/go.sum" "$work/go.sum" || { echo "tidy check: run scripts/tidy-nested.sh -w $dir" >&2; exit 1; }
