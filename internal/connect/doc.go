// Package connect is the pipeline every new pgsecure connection goes
// through. Data flows one way, and each stage lives in its own file:
//
//  1. credentials (root package, pool BeforeConnect): user and password
//     come from the credential source, if any.
//  2. dial (dial.go): only TCP, to the host pgx was asked for (a
//     pass-through LookupFunc hands the host name, not an address, to the
//     dial stage, which resolves it itself and so knows which name the
//     certificate must carry). The first bytes out must be a TLS request, the
//     first byte back must be 'S': nothing leaves in plaintext.
//  3. TLS and local verification (local.go, suites.go): pgx runs the
//     handshake with pgsecure's per-host tls.Config, whose VerifyConnection
//     verifies the chain (pinned roots, libpq's trust-anchor rule, CRLs),
//     host name and pins; AfterNetConnect then re-checks the completed
//     handshake (version, cipher suite, key exchange group, ALPN, chain,
//     host, pins) against the host of this attempt, so a swapped TLS
//     configuration cannot pass.
//  4. authentication watch (watch.go, preauth.go, binding.go): sits between
//     pgx's protocol reader and writer and the connection; before
//     AuthenticationOk admits only what libpq admits (bounded in size, count
//     and bytes); refuses a method the policy does not allow before pgx
//     answers it (a cleartext request only for a login token over verified
//     TLS), holds channel_binding=require itself, records the method and
//     whether SCRAM was bound to the TLS channel, and turns a rejected
//     password into a retry with fresh credentials, or, while the source has
//     nothing newer, into logins again with backoff until the database and
//     the source agree (relogin.go).
//  5. server-side proof (proof.go): a completed SCRAM-SHA-256-PLUS exchange
//     proves the server terminates TLS itself with the certificate the
//     client verified; otherwise (or when asked) the server is queried for
//     its own view of this backend. From here on the connection is marked
//     connected: the dial stage's guard passes deadlines and errors through
//     unchanged, as raw pgx sees them.
//  6. report: the verify.Report is attached to the connection and given to
//     the Observer with the connect's context; then the caller's hooks run.
//
// One attempt type (attempt.go) owns the state of one TCP connection; it is
// created by the dial stage and found by later stages under the connection
// they are handed. Install (install.go) wraps whatever hooks a
// configuration already has, so a caller's hooks run after pgsecure's. Every
// stage is idempotent, so installing twice (once when the pool is
// configured, once more on each per-connection copy in BeforeConnect) costs
// nothing; the one place that must recognise pgsecure's own function is
// rewire.go, which puts the authentication watch back around a
// BuildFrontend a caller replaced together with the pool's BeforeConnect.
package connect
