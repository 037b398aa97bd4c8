// Package pgsecureotel reports what pgsecure sees to OpenTelemetry: every
// verified and every refused connection, by refusal kind, the time TLS
// verification and the server-side check take, how long each certificate
// in use has left, and every credential fetch and failure. It is a separate
// module, so a service that imports pgsecure alone links no OpenTelemetry
// code.
//
//	b := pgsecure.NewBuilder(dsn).RootCAFile(caFile)
//	pool, err := pgsecureotel.Instrument(b, pgsecureotel.WithPoolName("orders")).Build(ctx)
//
// # Metrics
//
// All carry db.client.connection.pool.name when WithPoolName is given.
//
//	pgsecure.connections.verified              counter    server.address, pgsecure.proof
//	pgsecure.connections.refused               counter    server.address, pgsecure.refusal.kind, pgsecure.refusal.stage
//	pgsecure.connection.handshake.duration     histogram  s, TCP connect to verified TLS handshake; server.address
//	pgsecure.connection.server_check.duration  histogram  s, the server's view of the connection; server.address
//	pgsecure.certificate.time_to_expiry        gauge      s until NotAfter (negative once expired); pgsecure.certificate.role,
//	                                                      server.address (server role), pgsecure.certificate.subject,
//	                                                      pgsecure.certificate.serial
//	pgsecure.logins.failed                     counter    server.address, db.response.status_code (SQLSTATE 28P01
//	                                                      or 28000), pgsecure.secret.source (absent: connection string)
//	pgsecure.secret.fetches                    counter    pgsecure.secret.source
//	pgsecure.secret.failures                   counter    pgsecure.secret.source
//
// pgsecure.refusal.kind is one of pgsecure's RefusalKind values: plaintext
// (the connection would not have been encrypted: a server answering 'N', a
// plaintext server or middlebox, a removed TLS configuration), tls,
// certificate, auth_method, server_proof, configuration. Any increase of
// pgsecure.connections.refused is worth an alert: a refused connection is a
// misconfiguration, an attack or a broken network path, not load. A login
// the server rejected (a password rotated in the database before the secret
// store, a pg_hba.conf change) is not a pgsecure refusal: it is counted by
// pgsecure.logins.failed, once per connect that ends with it (not for a
// rejection pgsecure's retry with fresh credentials overcame).
//
// The server-check histogram records only connections the server was
// queried for (Build's first connection, pools with a client certificate
// or QueryServerEveryConnection); channel binding proves the rest during
// authentication at no cost. The expiry gauge reports, per host, the last
// server certificate seen and the last client certificate presented, so a
// renewed certificate replaces the old one on the next new connection.
//
// # Spans
//
// Each connection pgx opens gets a "pgsecure.connect" span (kind client),
// a child of the span in the connecting context. A verified connection's
// span carries its proof, TLS version, cipher suite, authentication method
// and server certificate, and has a "pgsecure.server_check" child when the
// server was queried. A refused connection's span has status Error,
// pgsecure.refusal.kind and pgsecure.refusal.stage; a failed login's has
// status Error, pgsecure.outcome "login_failed" and db.response.status_code.
// Every refused host of the connect (also one pgx gave up on before it
// verified the next host of a multi-host connection string) is a
// "pgsecure.refused" event of the span: pgsecure's events carry the
// connect's context, in which the span is. A refusal made before pgx dials
// (kind configuration) has no connect span yet and gets a
// "pgsecure.connect" span of its own, at the time of the refusal.
//
// The spans compose with a tracer the pool already has (such as otelpgx's,
// set in Builder.ConfigurePool): it keeps tracing queries and connects, and
// pgsecure's span becomes a child of its connect span.
//
// Attributes never carry a secret: host names, refusal kinds and stages,
// certificate subjects and serial numbers, and credential sources by their
// redacted name.
package pgsecureotel
