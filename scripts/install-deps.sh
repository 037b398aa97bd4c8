#!/usr/bin/env bash
# Installs what the tests need that Go modules cannot bring: the PostgreSQL 15
# server binaries (initdb, pg_ctl, postgres, pg_basebackup), psql (libpq parity
# tests), openssl (key fixtures are cross-checked against it) and pgbouncer (the
# pooler tests). Idempotent.
set -euo pipefail

have_server() {
  [ -x /usr/lib/postgresql/15/bin/initdb ] && return 0
  [ -n "${PGSECURE_PG_BINDIR:-}" ] && [ -x "$PGSECURE_PG_BINDIR/initdb" ] && return 0
  command -v initdb >/dev/null 2>&1
}

have_pgbouncer() {
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]
}

if have_server && have_pgbouncer && command -v psql >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: PostgreSQL 15 server binaries or pgbouncer are missing and apt-get is not available;" >&2
  echo "install PostgreSQL 15 (set PGSECURE_PG_BINDIR to its bin directory) and PgBouncer (pgbouncer on PATH)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql postgresql-client openssl pgbouncer >/dev/null
# The distribution's own cluster is not used by the tests.
$SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true
# Nor is the distribution's pgbouncer service: each test runs its own.
$SUDO systemctl disable --now pgbouncer >/dev/null 2>&1 || true
have_server && have_pgbouncer
