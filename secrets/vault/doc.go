// Package vault reads database credentials from HashiCorp Vault: KV
// version 2 secrets, dynamic credentials of the database secrets engine, and
// static roles of that engine.
//
// Importing the package registers the "vault" and "vault+http" schemes with
// secrets.Open.
//
// # In code
//
//	c, err := vault.NewClient("https://vault.example.com:8200", "/etc/vault/ca.pem",
//		vault.AppRoleFileAuth("/run/vault/role-id", "/run/vault/secret-id"))
//	src, err := vault.Database(c, "database", "app", vault.WithRevokeOnClose())
//	defer src.Close(ctx)
//
// A Client always verifies Vault's TLS certificate (against the CA file,
// VAULT_CACERT, or the system roots); there is no way to skip verification,
// and plain http is accepted only for loopback addresses. A Client logs in
// when first used, again when its token nears the end of its lease, and once
// more when Vault answers 403.
//
// # Dynamic credentials
//
// A Database source holds one lease and manages its lifetime on the timing
// model of package secrets (secrets.Cached therefore does not wrap it): it
// renews the lease at two thirds of each grant, with jitter, and with backoff
// after failures; each renewal attempt has its own deadline (the time left
// before the lease's last tenth, 2–30 s), so a Vault that stops answering
// counts as a failure, not as a renewal in progress. When renewal fails for good or the lease's max TTL is near,
// it reads new credentials (a new database role) in the background while the
// current ones are still served; callers wait for Vault only when no valid
// lease is held, or the lease is in its last tenth. When Vault is down, the
// current lease is served until it expires (one warning per outage, one info
// on recovery); after that, Credentials fails with secrets.ErrExpired naming
// the source. Invalidate (the database rejected the credentials) makes the
// next call read new ones. Close stops the renewal and, with
// WithRevokeOnClose, revokes the lease so the role is dropped at once.
//
// # Static roles
//
// A StaticRole source reads the role's current password on each call (so
// secrets.Cached caches it). Its credentials carry no Expires: sessions
// opened with the old password outlive a rotation, so the pool does not
// retire them. New connections pick up a rotation when the cache refreshes,
// or at once when the database rejects the old password: the next read
// then waits (jittered backoff from 100 ms, up to about 6 s) until Vault
// returns the rotated one.
//
// # URI grammar
//
//	vault://HOST[:PORT]/<mount>/creds/<role>[?params]         dynamic credentials (Database)
//	vault://HOST[:PORT]/<mount>/static-creds/<role>[?params]  static role (StaticRole)
//	vault://HOST[:PORT]/<mount>/data/<path>[?params]          KV version 2 secret (KV)
//	vault+http://127.0.0.1:PORT/...                           the same over plain http: loopback hosts only
//
// vault:// means https; PORT defaults to 8200. The mount may contain '/'.
// The first path segment named "data" (after the mount) selects KV, so a
// database mount with a segment named "data" must be configured in code.
//
// Parameters:
//
//	ca=FILE                 PEM CA file that signed Vault's certificate (else VAULT_CACERT, else system roots)
//	namespace=NS            Vault Enterprise namespace
//	auth=token              (default) token from token_file=FILE, else from VAULT_TOKEN, read at each login
//	auth=approle            role_id=ID or role_id_file=FILE, and secret_id_file=FILE
//	auth=kubernetes         role=ROLE, jwt_path=FILE (default: the pod's service account token)
//	auth_mount=PATH         login mount for approle or kubernetes (default: the method's name)
//	user_field=, password_field=, host_field=, port_field=, dbname_field=
//	                        KV keys to read (default username and password)
//	revoke_on_close=true    revoke the lease on Close (creds only)
//
// A URI never carries a secret: user-info (vault://TOKEN@host) and the
// parameters token, vault_token, secret_id, password and jwt are refused,
// as are unknown or repeated parameters.
//
// # Errors
//
// Failed requests return *secrets.Error, named by the source's URI (see
// Source.Name), with the operation and Vault path, which wraps
// secrets.ErrNotFound (404, no data), secrets.ErrUnavailable (unreachable,
// sealed, 5xx, 429), secrets.ErrInvalid (missing or malformed fields, an
// unset VAULT_TOKEN, an unreadable token or secret ID file) or
// secrets.ErrAccessDenied (login refused, 401, 403), and the client's error,
// so errors.As reaches *api.ResponseError. No error or log record contains a
// token, secret ID or password.
package vault
