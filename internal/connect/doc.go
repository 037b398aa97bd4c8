// Package connect is the pipeline every new pgsecure connection goes
// through. This is one connection attempt, top to bottom, with the file
// that does each step; data flows one way.
//
//  0. Configuration (internal/pool, Configure): the pgxpool.Config's
//     ConnConfig gets pgsecure's TLS configuration on every host
//     (internal/tlspolicy) and, from Arm (install.go), a tripwire on each
//     hook the pipeline wraps (DialFunc, AfterNetConnect, BuildFrontend,
//     ValidateConnect): a tripwire refuses with ErrInsecureConfig unless
//     the pipeline's stage for that hook runs around it.
//  1. The pool's BeforeConnect (internal/pool, State), on pgx's copy of
//     the ConnConfig: re-checks the copy (TLS configurations, negotiation,
//     authentication settings), takes user and password from the credential
//     source, runs the caller's hooks, re-checks again, shuffles the hosts
//     for load_balance_hosts=random, binds the TLS configuration to each
//     host, and calls Install (install.go), which puts each stage below
//     around the copy's hooks, once.
//  2. Lookup and dial (install.go, dial.go): the lookup stage hands pgx the
//     host name unresolved; the dial stage resolves it itself (or uses
//     hostaddr), dials only TCP and creates the attempt (attempt.go), whose
//     state later stages find under the connection they are handed. Its
//     guardedConn lets out nothing but the TLS request (or a direct TLS
//     ClientHello) and accepts nothing but 'S'; after the handshake it
//     refuses the startup message if the authentication watch is not in
//     front of it.
//  3. TLS and local verification (local.go, suites.go): pgx runs the
//     handshake with the host's tls.Config, whose VerifyConnection
//     (internal/tlspolicy) verifies chain, host name, pins and CRLs; the
//     local stage completes it under the attempt's context (so a request
//     for a client certificate is noted) and re-checks the result for the
//     attempt's host: version, cipher suite, key exchange group, ALPN,
//     chain, host, pins. Then it creates the authentication watch.
//  4. Authentication watch (watch.go, preauth.go, binding.go, relogin.go,
//     authpolicy.go): the frontend stage puts it between pgx's protocol
//     reader/writer and the connection (so pgx still holds the *tls.Conn
//     for channel binding). Before AuthenticationOk it admits only what
//     libpq admits (bounded in size, count and bytes), refuses a method the
//     policy does not allow before pgx answers it (a cleartext request only
//     for a login token over verified TLS), holds channel_binding=require
//     itself, records the method and whether SCRAM was bound, and turns a
//     rejected password into a retry with fresh credentials or, while the
//     source has nothing newer, into logins again with backoff. A login
//     the server rejects for good, before or right after AuthenticationOk,
//     is reported to the Observer.
//  5. Server-side proof (proof.go, pooler.go), in ValidateConnect, once: a
//     completed SCRAM-SHA-256-PLUS exchange proves the server terminates
//     TLS with the certificate the client verified; otherwise (or when
//     asked) the server is queried for its own view of this backend. The
//     report is attached to the connection (report.go) and given to the
//     Observer with the connect's context; from here on the attempt's
//     connection passes errors and deadlines through unchanged. Then the
//     caller's ValidateConnect runs.
//  6. The pool's AfterConnect (internal/pool): refuses a connection without
//     a report (the last tripwire), notes when its credentials expire (the
//     pool retires it before then, in PrepareConn), then runs the caller's
//     hooks.
//
// policy.go holds the Policy every stage reads and the interfaces the
// stages call out through: TLS (internal/tlspolicy), Credentials
// (internal/pool's credential stage) and Observer (internal/pool's State,
// which logs and turns outcomes into the public events).
package connect
