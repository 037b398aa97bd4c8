// Package tlspolicy is pgsecure's TLS policy and material: the pinned
// roots (a file reloaded on change, PEM bytes, or the system store), the
// client certificate (files reloaded on rotation, encrypted keys), SPKI
// pins and revocation lists, combined from the Builder's options and the
// connection string by New. A Policy is what the connection pipeline
// (internal/connect) calls connect.TLS: it builds each host's tls.Config
// (verification in VerifyConnection, with libpq's verify-full rules) and
// verifies a completed handshake's chain again for the host.
package tlspolicy
