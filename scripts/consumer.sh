#!/usr/bin/env bash
# Builds the otel module, and a program that imports it, against the root
# module as a consumer does: through the module proxy protocol, at the root
# version otel/go.mod requires, with no replace directive and no go.work.
# The version is this checkout, published into a throw-away file-system proxy
# (internal/tools/modproxy), so the check runs before the version is tagged.
#
# It fails when otel/go.mod is not what `go mod tidy` makes of it, when the
# otel module does not build or vet against the published root module, or when
# a fresh consumer module cannot resolve, build and vet both.
set -euo pipefail
cd "$(dirname "$0")/.."

root_module=github.com/pgsecure/pgsecure
want="$(awk -v m="$root_module" '$1 == m { print $2 } $1 == "require" && $2 == m { print $3 }' otel/go.mod)"
if [ -z "$want" ]; then
  echo "consumer check: otel/go.mod does not require $root_module" >&2
  exit 1
fi
case "$want" in
  v0.0.0-0001*) echo "consumer check: otel/go.mod requires the placeholder $want; require a release version" >&2; exit 1 ;;
esac
if grep -q "^replace" otel/go.mod; then
  echo "consumer check: otel/go.mod has a replace directive, which consumers ignore; use otel/go.work instead" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
proxy="$work/proxy"
otel_version=v0.0.0-consumer

# The proxy serves this checkout as $want and otel as $otel_version; every
# other module comes from the local module cache (itself a proxy layout) or
# the usual proxy, into a module cache of its own so the published test
# versions never enter the developer's cache.
git ls-files -co --exclude-standard | go run ./internal/tools/modproxy -dir . -version "$want" -proxy "$proxy"
(cd otel && git ls-files -co --exclude-standard | go run ../internal/tools/modproxy -dir . -version "$otel_version" -proxy "$proxy")
export GOWORK=off
export GOFLAGS=-modcacherw
export GONOSUMDB="$root_module" GONOSUMCHECK=1
export GOPROXY="file://$proxy,file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)"
export GOMODCACHE="$work/modcache"

# 1. The otel module itself, as `go get github.com/pgsecure/pgsecure/otel` sees it.
mkdir "$work/otel"
(cd otel && git ls-files -co --exclude-standard | while read -r f; do
  [ -f "$f" ] && mkdir -p "$work/otel/$(dirname "$f")" && cp "$f" "$work/otel/$f"
done)
rm -f "$work/otel/go.work" "$work/otel/go.work.sum"
# The root version's checksum is known only once it is tagged and served by
# the real proxy; the published stand-in has another, so its lines are
# compared without it.
grep -v "^$root_module " otel/go.sum > "$work/go.sum.want" || true
grep -v "^$root_module " otel/go.sum > "$work/otel/go.sum" || true
(cd "$work/otel" && go mod tidy)
diff -u otel/go.mod "$work/otel/go.mod" || { echo "consumer check: run 'GOWORK=off go mod tidy' in otel (with the root version published)" >&2; exit 1; }
grep -v "^$root_module " "$work/otel/go.sum" | diff -u "$work/go.sum.want" - || { echo "consumer check: otel/go.sum is not tidy" >&2; exit 1; }
(cd "$work/otel" && go build ./... && go vet ./...)

# 2. A program that imports both modules, resolved from nothing but go.mod.
mkdir "$work/consumer"
cat > "$work/consumer/main.go" <<'GO'
package main

import (
	"context"
	"fmt"

	"github.com/pgsecure/pgsecure"
	pgsecureotel "github.com/pgsecure/pgsecure/otel"
)

func main() {
	b := pgsecure.NewBuilder("postgres://app@db.example.com/app").RootCAFile("/etc/ssl/db-ca.pem")
	pool, err := pgsecureotel.Instrument(b).Build(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	pool.Close()
}
GO
cat > "$work/consumer/go.mod" <<GOMOD
module example.com/consumer

go $(awk '$1 == "go" { print $2; exit }' otel/go.mod)
GOMOD
(cd "$work/consumer" && go get "$root_module/otel@$otel_version" && go mod tidy && go build ./... && go vet ./...)
got="$(cd "$work/consumer" && go list -m -f '{{.Version}}' "$root_module")"
if [ "$got" != "$want" ]; then
  echo "consumer check: the consumer resolved $root_module $got, expected $want" >&2
  exit 1
fi
echo "consumer check: otel and a consumer build against $root_module $want through the module proxy"
