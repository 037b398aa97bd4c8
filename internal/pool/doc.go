// Package pool makes the pgxpool configuration of one pgsecure pool from a
// Builder's options (Configure) and holds what its hooks share (State):
// the per-connection install of the pipeline (internal/connect) in the
// pool's BeforeConnect, the re-checks of what a caller may have changed,
// the credential stage (fetch, rotation, the retry's candidates, expiry),
// failed-login logging, certificate-expiry warnings, Build's startup check
// and progress log. What happens is reported through Events, which the
// root package turns into its public events.
package pool
