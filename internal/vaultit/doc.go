// Package vaultit holds integration tests for the vault secret source,
// run against a real in-process HashiCorp Vault server and a real
// PostgreSQL server.
//
// It is a separate Go module so that the Vault server (BUSL-1.1 licensed)
// never enters the dependency graph of the pgsecure library: only its
// tests import it.
package vaultit
