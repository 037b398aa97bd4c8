package pgsecure

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/pgsecure/pgsecure/internal/libpq"
	"github.com/pgsecure/pgsecure/internal/pool"
	"github.com/pgsecure/pgsecure/internal/tlspolicy"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/secrets"
)

// Builder configures a verify-full pgx pool. Methods record their input and
// return the Builder; problems are reported by Config and Build. A Builder is
// a description: Build and Config take a snapshot of it, so calls made on the
// Builder afterwards (another OnEvent, hook or option) reach only the pools
// built after them, never one built before. A Builder is not safe for
// concurrent use; the pools it builds are.
//
// The connection string and an in-memory client key are held as
// secrets.Secret, so printing or logging a Builder (any verb, slog) shows
// "[REDACTED]" in their place.
type Builder struct {
	connString secrets.Secret
	errs       []error

	rootFile    string
	rootPEM     []byte
	systemRoots bool
	minVersion  uint16

	maxConns, minConns *int32
	logger             *slog.Logger
	beforeConnect      []func(context.Context, *pgx.ConnConfig) error
	afterConnect       []func(context.Context, *pgx.Conn) error
	configurePool      []func(*pgxpool.Config)
	queryEvery         bool

	channelBinding bool
	expiryWarn     time.Duration
	events         eventSink
	creds          secrets.Source
	cacheOpts      secrets.CacheOptions

	clientCertFile, clientKeyFile string
	clientCertPEM                 []byte
	clientKeyPEM                  secrets.Secret
	keyPassphrase                 func(context.Context) ([]byte, error)
	pins                          []string
	crlFiles, crlDirs             []string

	env func(string) (string, bool)
	now func() time.Time
}

// NewBuilder starts a configuration from a libpq connection string (URL or
// keyword/value form; "" takes everything from the PG* environment variables,
// as libpq does). The connection is always made with sslmode=verify-full: an
// absent sslmode means verify-full, any other value is refused.
func NewBuilder(connString string) *Builder {
	return &Builder{connString: secrets.NewSecret(connString), env: libpq.OSEnv, now: time.Now, expiryWarn: DefaultExpiryWarning}
}

// DefaultConnectTimeout limits each host's connection attempt (TCP, TLS,
// authentication and the server-side check) when neither connect_timeout
// nor PGCONNECT_TIMEOUT is set. libpq waits forever by default; a service
// that cannot reach its database should learn it. connect_timeout=0 keeps
// libpq's unlimited wait.
const DefaultConnectTimeout = libpq.DefaultConnectTimeout

// DefaultExpiryWarning is how close to expiry a certificate must be for
// pgsecure to warn (once per certificate per pool).
const DefaultExpiryWarning = 14 * 24 * time.Hour

// LoginLogInterval is how often a failed login with the same cause (host,
// user, SQLSTATE, credential source) is logged: the first failure is logged
// at once, later ones within the interval are counted and the count is
// logged with the first failure after it.
const LoginLogInterval = pool.LoginLogInterval

// RootCAFile pins the CA certificate(s) in a PEM file: the server's
// certificate must chain to one of them. The file is re-read when it changes,
// so a renewed bundle is used by the next new connection. Equivalent to
// libpq's sslrootcert=FILE.
func (b *Builder) RootCAFile(path string) *Builder {
	if path == "" {
		b.errs = append(b.errs, configErr("RootCAFile", "builder", "empty path", "pass the path of the CA certificate PEM file"))
	}
	b.rootFile = path
	return b
}

// RootCAPEM pins the CA certificate(s) given as PEM bytes.
func (b *Builder) RootCAPEM(pem []byte) *Builder {
	if len(pem) == 0 {
		b.errs = append(b.errs, configErr("RootCAPEM", "builder", "no PEM bytes", "pass the CA certificate(s) in PEM form"))
	}
	b.rootPEM = append([]byte(nil), pem...)
	return b
}

// SystemRoots trusts the operating system's CA store instead of a pinned CA
// (libpq's sslrootcert=system). Use it only for servers whose certificates
// come from a public CA, such as some managed database services.
func (b *Builder) SystemRoots() *Builder {
	b.systemRoots = true
	return b
}

// MinTLSVersion raises the minimum TLS version (default TLS 1.2, as libpq).
func (b *Builder) MinTLSVersion(v uint16) *Builder {
	if v != tls.VersionTLS12 && v != tls.VersionTLS13 {
		b.errs = append(b.errs, configErr("MinTLSVersion", "builder", fmt.Sprintf("unsupported version 0x%04x", v), "use tls.VersionTLS12 or tls.VersionTLS13"))
	}
	b.minVersion = v
	return b
}

// SPKIPins additionally requires one certificate of the server's verified
// chain (leaf, intermediate or root) to have one of these public keys:
// base64 SHA-256 of the SubjectPublicKeyInfo, as SPKIPin computes it. Give
// the current and the next key's pin before rotating keys. Pinning the CA's
// key lets leaf certificates be renewed freely.
func (b *Builder) SPKIPins(pins ...string) *Builder {
	if err := tlspolicy.ParsePins(pins); err != nil {
		b.errs = append(b.errs, err)
	}
	b.pins = append(b.pins, pins...)
	return b
}

// CRLFiles makes every server certificate chain be checked against the
// certificate revocation lists in the given PEM files (each may hold several
// CRLs), as libpq's sslcrl: every certificate of the chain, the CAs'
// included, needs a current CRL of its issuer, and none may be listed as
// revoked. The files are re-read when they change, so a renewed CRL is used
// by the next new connection. CRLFiles, CRLDir, sslcrl and sslcrldir (or
// PGSSLCRL and PGSSLCRLDIR) add up: all the CRLs they name are used.
func (b *Builder) CRLFiles(paths ...string) *Builder {
	if len(paths) == 0 || slices.Contains(paths, "") {
		b.errs = append(b.errs, configErr("CRLFiles", "builder", "empty path", "pass the path of a PEM file of CRLs (as the CA makes them, e.g. openssl ca -gencrl -out FILE)"))
	}
	b.crlFiles = append(b.crlFiles, paths...)
	return b
}

// CRLDir makes every server certificate chain be checked against the
// certificate revocation lists of a directory laid out by `openssl rehash`
// (files named <issuer name hash>.r<n>), as libpq's sslcrldir. The files
// are looked up by the hash of each certificate's issuer and re-read when
// they change. See CRLFiles.
func (b *Builder) CRLDir(dir string) *Builder {
	if dir == "" {
		b.errs = append(b.errs, configErr("CRLDir", "builder", "empty path", "pass a directory prepared with openssl rehash"))
	}
	b.crlDirs = append(b.crlDirs, dir)
	return b
}

// ClientCertFiles presents a client certificate (mutual TLS) from a PEM
// certificate file (leaf first, intermediates may follow) and its private
// key file. Both are re-read when they change, so renewed files are used by
// the next new connection without a restart; a half-written pair keeps the
// last good one. The key file must not be readable by group or others (as
// libpq requires). Equivalent to libpq's sslcert and sslkey.
func (b *Builder) ClientCertFiles(certFile, keyFile string) *Builder {
	if certFile == "" || keyFile == "" {
		b.errs = append(b.errs, configErr("ClientCertFiles", "builder", "both a certificate and a key file are needed", "pass both paths"))
	}
	b.clientCertFile, b.clientKeyFile = certFile, keyFile
	return b
}

// ClientCertPEM presents a client certificate given as PEM bytes.
func (b *Builder) ClientCertPEM(certPEM, keyPEM []byte) *Builder {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		b.errs = append(b.errs, configErr("ClientCertPEM", "builder", "both a certificate and a key are needed", "pass both PEM blocks"))
	}
	b.clientCertPEM, b.clientKeyPEM = append([]byte(nil), certPEM...), secrets.NewSecret(string(keyPEM))
	return b
}

// ClientKeyPassphrase supplies the passphrase of an encrypted client key
// (legacy encrypted PEM or encrypted PKCS#8), e.g. from a secret store. It
// is called when the key is loaded and again when a renewed key file is
// loaded. Equivalent to libpq's sslpassword, without putting the passphrase
// in the connection string.
//
// A nil fn is an error at Build.
func (b *Builder) ClientKeyPassphrase(fn func(ctx context.Context) ([]byte, error)) *Builder {
	if fn == nil {
		b.errs = append(b.errs, nilHook("ClientKeyPassphrase"))
	}
	b.keyPassphrase = fn
	return b
}

// RequireChannelBinding makes SCRAM authentication bind to the TLS channel
// (SCRAM-SHA-256-PLUS), as libpq's channel_binding=require. The default is
// prefer: bind when the server offers it.
func (b *Builder) RequireChannelBinding() *Builder { b.channelBinding = true; return b }

// Credentials makes each new connection take its user and password (and the
// host, port and database, when the source provides them) from src instead
// of the connection string and PGPASSWORD.
//
// Fetches go through secrets.Cached: a secrets.Cache (unless src is one
// already, or manages its own lifetime, as a Vault dynamic-credentials
// source does) that refreshes in the background before expiry without
// stalling callers, coalesces concurrent fetches into one backend call, and
// keeps serving unexpired credentials while the backend is down (the timing
// model is documented in package secrets).
// Config fetches once, so a source that cannot be reached fails Build at
// startup. Each connection remembers when the credentials it was opened
// with expire (a lease) and the pool retires it shortly before that,
// instead of shortening every connection's lifetime; a connection opened
// with a login token (secrets.Credentials.LoginToken: RDS IAM, Cloud SQL,
// AlloyDB, Entra ID) is kept, since the token matters only at login. When the server
// rejects a password (SQLSTATE 28P01), the credentials are invalidated (a
// rotating source may switch to its pending version) and the connection is
// retried with freshly fetched ones, within the same Acquire. While the
// source has nothing newer (a rotation half done: the secret changed before
// the database password, or after it), the login is tried again with short
// jittered backoff, within connect_timeout, with the source's current
// credentials and the previous ones (those this pool used before, or the
// source's own previous version, secrets.PreviousProvider), so either order
// converges as soon as the database and the secret agree. When they still
// disagree at the end of connect_timeout the error wraps
// ErrCredentialsRejected and the server's 28P01 and names the source. Fresh
// credentials rejected too end the connect with the server's error.
//
// src stays the caller's: pgsecure never closes it. A source holding leases
// (secrets.Closer) should be closed by the caller after the pool.
func (b *Builder) Credentials(src secrets.Source) *Builder {
	if src == nil {
		b.errs = append(b.errs, configErr("Credentials", "builder", "nil source", "pass a secrets.Source, e.g. from secrets.Open"))
	}
	b.creds = src
	return b
}

// CredentialCache tunes the cache Credentials puts in front of the source.
func (b *Builder) CredentialCache(o secrets.CacheOptions) *Builder {
	b.cacheOpts = o
	return b
}

// MaxConns sets the pool's maximum size (default: pgxpool's, or pool_max_conns).
func (b *Builder) MaxConns(n int32) *Builder { b.maxConns = &n; return b }

// MinConns sets the number of connections the pool keeps open.
func (b *Builder) MinConns(n int32) *Builder { b.minConns = &n; return b }

// ConfigurePool lets the caller tune the pgxpool configuration before
// pgsecure installs its checks: pool sizes, a tracer, ValidateConnect,
// DialFunc, AfterNetConnect, pool hooks. fn runs when Build (or Config)
// has parsed the connection string; pgsecure then installs its checks
// around whatever fn set, so the caller's connect hooks run after
// pgsecure's and cannot unhook them. This is the recommended way to
// customise a pool. fn must not touch TLS settings: a TLS configuration it
// sets or removes is refused. A nil fn is an error at Build.
func (b *Builder) ConfigurePool(fn func(*pgxpool.Config)) *Builder {
	if fn == nil {
		b.errs = append(b.errs, nilHook("ConfigurePool"))
	}
	b.configurePool = append(b.configurePool, fn)
	return b
}

// QueryServerEveryConnection makes every new connection ask the server for
// its own view of the connection (pg_stat_get_activity for its backend),
// even when channel binding already proved it terminates TLS itself. By
// default only the connections Build opens are queried; later connections
// whose SCRAM exchange completed with SCRAM-SHA-256-PLUS are proven by it
// (see verify.ProofChannelBinding). For auditors who want the server's own
// words on every connection; it costs one round trip per new connection.
// A pool that presents a client certificate always queries, so that every
// report carries the client certificate the server saw
// (verify.ServerSSL.ClientDN).
func (b *Builder) QueryServerEveryConnection() *Builder { b.queryEvery = true; return b }

// BeforeConnect adds a hook run before each new connection, after pgsecure
// has set the credentials and before it re-checks the TLS policy, so the hook
// may adjust the ConnConfig but cannot weaken it. A nil fn is an error at
// Build.
func (b *Builder) BeforeConnect(fn func(context.Context, *pgx.ConnConfig) error) *Builder {
	if fn == nil {
		b.errs = append(b.errs, nilHook("BeforeConnect"))
	}
	b.beforeConnect = append(b.beforeConnect, fn)
	return b
}

// AfterConnect adds a hook run on each new connection after pgsecure has
// verified it (both the local TLS state and the server's pg_stat_ssl). A
// nil fn is an error at Build.
func (b *Builder) AfterConnect(fn func(context.Context, *pgx.Conn) error) *Builder {
	if fn == nil {
		b.errs = append(b.errs, nilHook("AfterConnect"))
	}
	b.afterConnect = append(b.afterConnect, fn)
	return b
}

// Logger sets where pgsecure logs. The default is slog.Default(); pgsecure
// logs verified connections at Debug and only actionable problems (such as a
// renewed certificate file that does not parse) at Warn. Secrets are never
// logged.
func (b *Builder) Logger(l *slog.Logger) *Builder { b.logger = l; return b }

// OnEvent registers a callback for connection, login and secret events
// (see Event), e.g. to count refusals in a service's own metrics or to
// annotate its traces. ctx is the context of the connect (or credential
// fetch) the event belongs to: it carries the values of the context that
// Acquire, Ping or Build was called with, and what a pgx ConnectTracer put
// in it (its span). Callbacks run synchronously on the connecting goroutine
// and must be quick. A nil fn is an error at Build.
func (b *Builder) OnEvent(fn func(ctx context.Context, ev Event)) *Builder {
	if fn == nil {
		b.errs = append(b.errs, nilHook("OnEvent"))
	}
	b.events.fns = append(b.events.fns, fn)
	return b
}

// ExpiryWarning sets how close to expiry the server or client certificate
// must be for a warning (and a CertificateExpiring event); 0 disables it.
func (b *Builder) ExpiryWarning(d time.Duration) *Builder { b.expiryWarn = d; return b }

// Build returns a pool that opens only verify-full, verified connections. It
// returns after one connection has been opened and verified from both ends
// (the server is queried for its view of that connection whatever the
// proof), so a service that cannot reach its database securely fails at
// startup. The error wraps ErrInsecureConfig (fix the configuration),
// ErrNotEncrypted / ErrUntrustedServer (the server or the path to it is not
// what it should be) or a connection error; it is a *ConnectError (one
// line: where, the problem, the stage and the fix) wrapping the typed errors
// underneath. A start that takes longer than
// a few seconds logs its progress (host and stage) at Info.
func (b *Builder) Build(ctx context.Context) (*pgxpool.Pool, error) {
	cfg, st, err := b.configure(ctx)
	if err != nil {
		return nil, err
	}
	st.Starting(true)
	defer st.Starting(false)
	// Every connection Build opens (its own, and the MinConns ones pgxpool
	// opens with this context) is proven by the server query inside its
	// connect, so its ConnectionVerified event and its report agree.
	ctx = connect.WithServerQuery(ctx)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgsecure: creating the pool: %w", err)
	}
	stop := st.LogProgress(ctx)
	err = st.StartupCheck(ctx, pool)
	stop()
	if err != nil {
		pool.Close()
		return nil, connectError(err, cfg.ConnConfig, b.loginOrigin(cfg.ConnConfig))
	}
	return pool, nil
}

// Config returns the pgxpool configuration with pgsecure's TLS policy and
// checks in place, for callers who create the pool with
// pgxpool.NewWithConfig. Prefer ConfigurePool and Build: Build also fails
// at startup when no verified connection can be made.
//
// The pool's BeforeConnect installs pgsecure's pipeline on each
// connection's copy of the ConnConfig, once, around the hooks that copy
// has: a DialFunc, AfterNetConnect, BuildFrontend or ValidateConnect set
// on the returned ConnConfig runs inside pgsecure's stage for it, after
// its checks. Keep that BeforeConnect: replace it only with a function
// that calls it. Without it each of those hooks is a tripwire that refuses
// the connection with ErrInsecureConfig before the startup message, and
// the pool's AfterConnect refuses a connection that carries no
// verification report; a hook replaced after pgsecure's BeforeConnect ran
// (by a function wrapped around it) is refused the same way. The TLS
// configuration of every host verifies the server in the handshake in any
// case. To use the ConnConfig without a pool, call BeforeConnect on a copy
// of it first, as pgxpool does.
func (b *Builder) Config(ctx context.Context) (*pgxpool.Config, error) {
	cfg, _, err := b.configure(ctx)
	return cfg, err
}

// Explain returns a connection error of a pool made from this Builder's
// Config as Build would return it: a *ConnectError (one line: where, the
// problem, the stage and the fix) wrapping err, for callers who create the
// pool themselves. An error that is not a failed connection attempt (no
// *pgconn.ConnectError in it) is returned unchanged.
func (b *Builder) Explain(err error) error {
	var pgxErr *pgconn.ConnectError
	if err == nil || !errors.As(err, &pgxErr) || pgxErr.Config == nil {
		return err
	}
	cc := &pgx.ConnConfig{Config: *pgxErr.Config}
	return connectError(err, cc, b.loginOrigin(cc))
}

// SPKIPin returns the public-key pin of the first certificate in certPEM:
// the standard (padded) base64 encoding of the SHA-256 digest of its DER
// SubjectPublicKeyInfo. It is the value SPKIPins expects, the format of HPKP
// and curl's --pinnedpubkey, and the output of
//
//	openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
//
// PEM blocks of other types before the certificate are skipped. The error
// wraps ErrInsecureConfig.
func SPKIPin(certPEM []byte) (string, error) { return tlspolicy.SPKIPin(certPEM) }

// OpenDB returns a *sql.DB whose connections all come from pool, so
// database/sql code gets the same verified connections (and hooks) as pgx
// code. Do not use sql.Open("pgx", dsn): it would bypass pgsecure.
// Closing the *sql.DB does not close the pool.
func OpenDB(pool *pgxpool.Pool) *sql.DB {
	return stdlib.OpenDBFromPool(pool)
}

// snapshot is a copy of b that later calls on b do not change: Build and
// Config work from it, so the pool they make never refers to b.
func (b *Builder) snapshot() *Builder {
	c := *b
	c.errs = slices.Clone(b.errs)
	c.rootPEM = slices.Clone(b.rootPEM)
	c.beforeConnect = slices.Clone(b.beforeConnect)
	c.afterConnect = slices.Clone(b.afterConnect)
	c.configurePool = slices.Clone(b.configurePool)
	c.events = eventSink{fns: slices.Clone(b.events.fns)}
	c.clientCertPEM = slices.Clone(b.clientCertPEM)
	c.pins = slices.Clone(b.pins)
	c.crlFiles = slices.Clone(b.crlFiles)
	c.crlDirs = slices.Clone(b.crlDirs)
	return &c
}

// nilHook is the error a nil callback given to the Builder becomes.
func nilHook(method string) error {
	return configErr(method, "builder", "nil function", "pass a function, or do not call "+method)
}

func (b *Builder) log() *slog.Logger {
	if b.logger != nil {
		return b.logger
	}
	return slog.Default()
}

// configure makes a pool's configuration from a snapshot of the Builder:
// what the pool keeps refers to the snapshot only.
func (b *Builder) configure(ctx context.Context) (*pgxpool.Config, *pool.State, error) {
	b = b.snapshot()
	if len(b.errs) > 0 {
		return nil, nil, errors.Join(b.errs...)
	}
	return pool.Configure(ctx, &pool.Options{ConnString: b.connString, Env: b.env, TLS: b.tlsOptions(),
		ConfigurePool: b.configurePool, Credentials: b.creds, CacheOptions: b.cacheOpts, QueryEvery: b.queryEvery,
		ChannelBinding: b.channelBinding, MaxConns: b.maxConns, MinConns: b.minConns, BeforeConnect: b.beforeConnect,
		AfterConnect: b.afterConnect, ExpiryWarn: b.expiryWarn, Log: b.log, Events: &b.events})
}

// tlsOptions are the Builder's TLS settings, for tlspolicy.New.
func (b *Builder) tlsOptions() *tlspolicy.Options {
	return &tlspolicy.Options{Now: b.now, Log: b.log, MinVersion: b.minVersion, RootFile: b.rootFile, RootPEM: b.rootPEM,
		SystemRoots: b.systemRoots, ClientCertFile: b.clientCertFile, ClientKeyFile: b.clientKeyFile, ClientCertPEM: b.clientCertPEM,
		ClientKeyPEM: b.clientKeyPEM, KeyPassphrase: b.keyPassphrase, Pins: b.pins, CRLFiles: b.crlFiles, CRLDirs: b.crlDirs,
		ExpiryWarn: b.expiryWarn}
}

// loginOrigin says where the password of cc came from, for the fix of a
// rejected password: the credential source (by its redacted name), the
// connection string, PGPASSWORD or the password file.
func (b *Builder) loginOrigin(cc *pgx.ConnConfig) loginOrigin {
	if b.creds != nil {
		return loginOrigin{password: fmt.Sprintf("the password credential source %s holds", secrets.NameOf(b.creds))}
	}
	if cs, err := libpq.ParseSettings(b.connString.Reveal(), b.env); err == nil {
		if _, ok := cs.Raw["password"]; ok {
			return loginOrigin{password: "the password in the connection string"}
		}
	}
	if v, ok := b.env("PGPASSWORD"); ok && v != "" {
		return loginOrigin{password: "the PGPASSWORD environment variable"}
	}
	if cc.Password != "" {
		return loginOrigin{password: "the password file (PGPASSFILE, or ~/.pgpass)"}
	}
	return loginOrigin{password: "the password (none was given: set one in the connection string, PGPASSWORD, a password file or a credential source)"}
}
