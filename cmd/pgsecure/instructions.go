package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// serverInstructions tells the operator how to configure PostgreSQL with a
// new server certificate and how clients connect.
func serverInstructions(crt, key, caFile, host string) string {
	crt, key = absPath(crt), absPath(key)
	var b strings.Builder
	fmt.Fprintf(&b, "wrote %s (server certificate)\nwrote %s (server key, mode 0600)\n\n", crt, key)
	fmt.Fprintf(&b, `postgresql.conf:
  ssl = on
  ssl_cert_file = '%s'
  ssl_key_file = '%s'
  ssl_min_protocol_version = 'TLSv1.2'
  ssl_ciphers = '%s'
  password_encryption = 'scram-sha-256'
  log_connections = on
  # for client certificates (clientcert=verify-full below):
  ssl_ca_file = '%s'

The key file must be owned by the user the server runs as (chown postgres: %s)
and keep mode 0600.

pg_hba.conf, before any other host line:
  hostnossl all all 0.0.0.0/0 reject
  hostnossl all all ::/0      reject
  hostssl   all all 0.0.0.0/0 scram-sha-256
  hostssl   all all ::/0      scram-sha-256
  # or, to also require a client certificate whose CN is the role name:
  # hostssl all all 0.0.0.0/0 scram-sha-256 clientcert=verify-full

Reload PostgreSQL (SELECT pg_reload_conf();), then connect and check:
  pgsecure check --ca %s "postgres://USER@%s:5432/DBNAME"

Renew it before it expires, e.g. nightly from cron (a run with nothing due does nothing):
  pgsecure certs renew --ca-dir %s --cert %s --key %s --reload "postgres://SUPERUSER@%s:5432/postgres"

Connection string for pgsecure (sslmode=verify-full is implied):
  postgres://USER@%s:5432/DBNAME?sslrootcert=%s
`, crt, key, goodCiphers, caFile, key, caFile, hostForURL(host), filepath.Dir(caFile), crt, key, hostForURL(host), hostForURL(host), caFile)
	return b.String()
}

func hostForURL(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}
