package pgsecure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/pgsecure/pgsecure/verify"
)

// Builder configures a verify-full pgx pool. Methods record their input and
// return the Builder; problems are reported by Config and Build. A Builder is
// not safe for concurrent use; the pools it builds are.
type Builder struct {
	connString string
	errs       []error

	rootFile    string
	rootPEM     []byte
	systemRoots bool
	minVersion  uint16

	maxConns, minConns *int32
	logger             *slog.Logger
	beforeConnect      []func(context.Context, *pgx.ConnConfig) error
	afterConnect       []func(context.Context, *pgx.Conn) error

	channelBinding bool
	expiryWarn     time.Duration
	events         eventSink
	creds          secrets.Source
	cacheOpts      secrets.CacheOptions

	clientCertFile, clientKeyFile string
	clientCertPEM, clientKeyPEM   []byte
	keyPassphrase                 func(context.Context) ([]byte, error)
	pins                          []string

	env func(string) (string, bool)
	now func() time.Time
}

// NewBuilder starts a configuration from a libpq connection string (URL or
// keyword/value form; "" takes everything from the PG* environment variables,
// as libpq does). The connection is always made with sslmode=verify-full: an
// absent sslmode means verify-full, any other value is refused.
func NewBuilder(connString string) *Builder {
	return &Builder{connString: connString, env: osEnv, now: time.Now, expiryWarn: DefaultExpiryWarning}
}

// DefaultExpiryWarning is how close to expiry a certificate must be for
// pgsecure to warn (once per certificate per pool).
const DefaultExpiryWarning = 14 * 24 * time.Hour

// RequireChannelBinding makes SCRAM authentication bind to the TLS channel
// (SCRAM-SHA-256-PLUS), as libpq's channel_binding=require. The default is
// prefer: bind when the server offers it.
func (b *Builder) RequireChannelBinding() *Builder { b.channelBinding = true; return b }

// ExpiryWarning sets how close to expiry the server or client certificate
// must be for a warning (and an EventCertificateExpiring); 0 disables it.
func (b *Builder) ExpiryWarning(d time.Duration) *Builder { b.expiryWarn = d; return b }

// OnEvent registers a callback for connection and secret events (see
// Event), e.g. to count refusals in a service's own metrics. Callbacks run
// synchronously on the connecting goroutine and must be quick.
func (b *Builder) OnEvent(fn func(Event)) *Builder {
	b.events.fns = append(b.events.fns, fn)
	return b
}

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

// MaxConns sets the pool's maximum size (default: pgxpool's, or pool_max_conns).
func (b *Builder) MaxConns(n int32) *Builder { b.maxConns = &n; return b }

// MinConns sets the number of connections the pool keeps open.
func (b *Builder) MinConns(n int32) *Builder { b.minConns = &n; return b }

// Logger sets where pgsecure logs. The default is slog.Default(); pgsecure
// logs verified connections at Debug and only actionable problems (such as a
// renewed certificate file that does not parse) at Warn. Secrets are never
// logged.
func (b *Builder) Logger(l *slog.Logger) *Builder { b.logger = l; return b }

// BeforeConnect adds a hook run before each new connection, after pgsecure
// has set the credentials and before it re-checks the TLS policy, so the hook
// may adjust the ConnConfig but cannot weaken it.
func (b *Builder) BeforeConnect(fn func(context.Context, *pgx.ConnConfig) error) *Builder {
	b.beforeConnect = append(b.beforeConnect, fn)
	return b
}

// AfterConnect adds a hook run on each new connection after pgsecure has
// verified it (both the local TLS state and the server's pg_stat_ssl).
func (b *Builder) AfterConnect(fn func(context.Context, *pgx.Conn) error) *Builder {
	b.afterConnect = append(b.afterConnect, fn)
	return b
}

func (b *Builder) log() *slog.Logger {
	if b.logger != nil {
		return b.logger
	}
	return slog.Default()
}

// Build returns a pool that opens only verify-full, verified connections. It
// returns after one connection has been opened and verified from both ends,
// so a service that cannot reach its database securely fails at startup. The
// error wraps ErrInsecureConfig (fix the configuration), ErrNotEncrypted /
// ErrUntrustedServer (the server or the path to it is not what it should be)
// or a connection error.
func (b *Builder) Build(ctx context.Context) (*pgxpool.Pool, error) {
	cfg, err := b.Config(ctx)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgsecure: creating the pool: %w", err)
	}
	err = pool.Ping(ctx)
	if err != nil && isInvalidPassword(err) && b.creds != nil {
		// The credential source may just have rotated: the rejected
		// credentials were invalidated by the connection; try once more.
		err = pool.Ping(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgsecure: startup check failed: %w", err)
	}
	return pool, nil
}

// Config returns the pgxpool configuration with pgsecure's TLS policy and
// checks installed, for callers who tune the pool before creating it with
// pgxpool.NewWithConfig.
//
// The checks live on the ConnConfig (TLSConfig of every host, DialFunc,
// AfterNetConnect, ValidateConnect, BuildFrontend) and hold even if the pool-level
// BeforeConnect/AfterConnect are replaced. A DialFunc, AfterNetConnect or
// ValidateConnect you set on the returned ConnConfig is chained after
// pgsecure's checks at connect time (your AfterNetConnect receives a
// connection whose handshake is complete and verified; it implements
// verify.TLSStater, and a wrapper you return must too); to add pool-level hooks, prefer
// Builder.BeforeConnect/AfterConnect (or wrap the installed functions).
func (b *Builder) Config(ctx context.Context) (*pgxpool.Config, error) {
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	cs, err := parseConnSettings(b.connString, b.env)
	if err != nil {
		return nil, err
	}
	pol, err := b.policy(cs)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(cs.forPgx(b.connString))
	if err != nil {
		return nil, &ConfigError{Setting: "connection string", Problem: "rejected by pgx",
			Err: errors.New(scrub(err.Error(), cs.secrets()...))}
	}
	if err := stripConsumedParams(cfg.ConnConfig); err != nil {
		return nil, err
	}
	// Credentials are fetched once now: a source that cannot be reached fails
	// at startup, and a host it names replaces the connection string's.
	creds, err := b.credentialHook(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := b.noUnixSockets(cfg.ConnConfig); err != nil {
		return nil, err
	}
	auth, err := b.authPolicy(cs, cfg.ConnConfig)
	if err != nil {
		return nil, err
	}
	e := &enforcer{policy: pol, auth: auth, expiryWarn: b.expiryWarn, log: b.log, events: &b.events}
	e.install(cfg.ConnConfig)
	if creds != nil {
		creds.e = e
		e.creds = creds
		creds.retry = !isPreferStandby(cs)
	}
	if b.maxConns != nil {
		cfg.MaxConns = *b.maxConns
	}
	if b.minConns != nil {
		cfg.MinConns = *b.minConns
	}
	before, after := b.beforeConnect, b.afterConnect
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		balanceHosts(cs, cc) // load_balance_hosts (loadbalance.go): first, so the credential retry copies the shuffled hosts
		if creds != nil {
			if err := creds.apply(ctx, cc); err != nil {
				return err
			}
		}
		for _, fn := range before {
			if err := fn(ctx, cc); err != nil {
				return err
			}
		}
		return e.recheck(cc)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		for _, fn := range after {
			if err := fn(ctx, c); err != nil {
				return err
			}
		}
		return nil
	}
	return cfg, nil
}

// policy decides the TLS policy from the builder and the connection settings.
func (b *Builder) policy(cs *connSettings) (*tlsPolicy, error) {
	if err := checkSettings(cs); err != nil {
		return nil, err
	}
	pol := &tlsPolicy{minVersion: tls.VersionTLS12, sni: true, now: b.now}
	if s := cs.get("sslsni"); s.set && s.value == "0" {
		pol.sni = false
	}
	if s := cs.get("sslnegotiation"); s.set && s.value == "direct" {
		pol.direct = true
	}
	if s := cs.get("ssl_min_protocol_version"); s.set {
		pol.minVersion, _ = parseTLSVersion(s.value) // validated by checkSettings
	}
	if b.minVersion > pol.minVersion {
		pol.minVersion = b.minVersion
	}
	if s := cs.get("ssl_max_protocol_version"); s.set {
		pol.maxVersion, _ = parseTLSVersion(s.value)
		if pol.maxVersion < pol.minVersion {
			return nil, configErr("ssl_max_protocol_version", s.from,
				fmt.Sprintf("%s is below the minimum %s", s.value, verify.VersionName(pol.minVersion)), "raise it or remove it")
		}
	}
	r, err := b.rootSource(cs)
	if err != nil {
		return nil, err
	}
	pol.roots = r
	cc, err := b.clientCertificate(cs)
	if err != nil {
		return nil, err
	}
	if cc != nil { // keep the interface nil when there is no certificate
		pol.clientCert = cc
	}
	pol.pins = b.pins
	return pol, nil
}

// rootSource picks the pinned CA: exactly one of the builder's RootCAFile /
// RootCAPEM / SystemRoots and the sslrootcert setting (connection string or
// PGSSLROOTCERT), unless they name the same file.
func (b *Builder) rootSource(cs *connSettings) (rootSource, error) {
	dsn := cs.get("sslrootcert")
	var fromBuilder []string
	if b.rootFile != "" {
		fromBuilder = append(fromBuilder, "RootCAFile")
	}
	if len(b.rootPEM) > 0 {
		fromBuilder = append(fromBuilder, "RootCAPEM")
	}
	if b.systemRoots {
		fromBuilder = append(fromBuilder, "SystemRoots")
	}
	switch {
	case len(fromBuilder) > 1:
		return nil, configErr(fromBuilder[0], "builder", fmt.Sprintf("more than one trust anchor given (%v)", fromBuilder), "use exactly one")
	case len(fromBuilder) == 1 && dsn.set && !(b.rootFile != "" && samePath(b.rootFile, dsn.value)):
		return nil, configErr("sslrootcert", dsn.from,
			fmt.Sprintf("conflicts with %s given to the builder; pgsecure will not guess which to trust", fromBuilder[0]),
			"remove one of them")
	}
	switch {
	case b.systemRoots || dsn.value == "system":
		r, err := systemRoots()
		if err != nil {
			return nil, &ConfigError{Setting: "sslrootcert", From: dsn.from, Problem: "cannot load the system CA store", Err: err}
		}
		return r, nil
	case len(b.rootPEM) > 0:
		r, err := parseRoots(b.rootPEM, "RootCAPEM")
		if err != nil {
			return nil, &ConfigError{Setting: "RootCAPEM", From: "builder", Problem: "unusable", Err: err}
		}
		return staticRoots{r: r}, nil
	}
	path, from := b.rootFile, "builder"
	if path == "" {
		path, from = dsn.value, dsn.from
	}
	if path == "" {
		fix := "pin the CA that issued the server certificate: NewBuilder(...).RootCAFile(\"/path/ca.crt\"), sslrootcert=/path/ca.crt or PGSSLROOTCERT; use SystemRoots() (sslrootcert=system) only for publicly-issued server certificates"
		if home, err := os.UserHomeDir(); err == nil {
			if p := filepath.Join(home, ".postgresql", "root.crt"); fileExists(p) {
				fix = fmt.Sprintf("%s exists but pgsecure does not trust it implicitly; pass it explicitly with sslrootcert=%s if it is the right CA", p, p)
			}
		}
		return nil, configErr("sslrootcert", "", "no CA certificate given, so the server cannot be verified", fix)
	}
	r, err := newFileRoots(path, b.log)
	if err != nil {
		return nil, &ConfigError{Setting: "sslrootcert", From: from, Problem: "cannot load the CA file", Err: err,
			Fix: "check the path and that the file holds PEM CERTIFICATE blocks"}
	}
	return r, nil
}

// noUnixSockets refuses unix-socket hosts: they cannot carry TLS.
func (b *Builder) noUnixSockets(cc *pgx.ConnConfig) error {
	for _, h := range hosts(cc) {
		if isUnixSocket(h.host) {
			return unixSocketError(h.host, "", "connect over TCP: set host= (or PGHOST) to the server's name as it appears in its certificate")
		}
	}
	return nil
}

// hostEntry is one place pgx may connect to, with its TLS configuration.
type hostEntry struct {
	host string
	port uint16
	tls  **tls.Config
}

func hosts(cc *pgx.ConnConfig) []hostEntry {
	out := []hostEntry{{host: cc.Host, port: cc.Port, tls: &cc.TLSConfig}}
	for _, fb := range cc.Fallbacks {
		out = append(out, hostEntry{host: fb.Host, port: fb.Port, tls: &fb.TLSConfig})
	}
	return out
}

// unixSocketError refuses a unix-socket host, saying where it came from.
func unixSocketError(host, from, fix string) error {
	return configErr("host", from, fmt.Sprintf("%q is a unix-socket directory, which cannot carry TLS", host), fix)
}

func isUnixSocket(host string) bool {
	return filepath.IsAbs(host) || (len(host) > 0 && host[0] == '@')
}

func samePath(a, b string) bool {
	ca, err1 := filepath.Abs(a)
	cb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && ca == cb
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// authPolicy decides which authentication methods are allowed: by default
// only scram-sha-256; require_auth (connection string or PGREQUIREAUTH) may
// widen it, with a warning. channel_binding is honoured; the builder's
// RequireChannelBinding forces require.
func (b *Builder) authPolicy(cs *connSettings, cc *pgx.ConnConfig) (authPolicy, error) {
	pol := authPolicy{allowed: []string{AuthSCRAM}}
	if s := cs.get("require_auth"); s.set {
		p, err := parseRequireAuth(s.value)
		if err != nil {
			return authPolicy{}, err // checkSettings reported it already
		}
		pol = p
		if pol.weakerThanSCRAM() {
			b.log().Warn("pgsecure: require_auth allows more than scram-sha-256; a server asking for these methods will receive the password or a hash of it (inside TLS)",
				slog.String("require_auth", pol.String()), slog.String("from", s.from))
		}
	}
	if b.channelBinding {
		cc.ChannelBinding = "require"
	}
	if cc.ChannelBinding == "disable" {
		b.log().Warn("pgsecure: channel_binding=disable: SCRAM will not be bound to the TLS channel")
	}
	return pol, nil
}

func isInvalidPassword(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "28P01"
}

// isPreferStandby reports target_session_attrs=prefer-standby, whose
// end-of-list re-dial would collide with the credential retry's addresses.
func isPreferStandby(cs *connSettings) bool {
	return cs.get("target_session_attrs").value == "prefer-standby"
}
