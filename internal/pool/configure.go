package pool

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/libpq"
	"github.com/pgsecure/pgsecure/internal/tlspolicy"
	"github.com/pgsecure/pgsecure/secrets"
)

// Configure makes the pgxpool configuration of one pool from a Builder's
// options: the connection string read as libpq reads it, the TLS policy,
// the credentials (fetched once now, so a source that cannot be reached
// fails at startup), the authentication policy, the pipeline's tripwires
// on the ConnConfig and the pool's hooks around the caller's.
func Configure(ctx context.Context, b *Options) (*pgxpool.Config, *State, error) {
	cs, err := libpq.ParseSettings(b.ConnString.Reveal(), b.Env)
	if err != nil {
		return nil, nil, err
	}
	pol, err := tlspolicy.New(b.TLS, cs)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := pgxpool.ParseConfig(cs.ForPgx())
	if err != nil {
		return nil, nil, cs.ExplainParseError()
	}
	if err := cs.ApplyConsumed(cfg.ConnConfig); err != nil {
		return nil, nil, err
	}
	for _, h := range libpq.Hosts(cfg.ConnConfig) {
		*h.TLS = nil // pgx's; pgsecure installs its own below
	}
	for _, fn := range b.ConfigurePool {
		fn(cfg)
	}
	if err := checkCallerTLS(cfg.ConnConfig); err != nil {
		return nil, nil, err
	}
	cfg.ConnConfig.LookupFunc = libpq.NumericLookup(cfg.ConnConfig.LookupFunc) // dial 192.000.002.001 as libpq does
	// Credentials are fetched once now: a source that cannot be reached fails
	// at startup, and a host it names replaces the connection string's.
	creds, err := b.credentialStage(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	hostAddrs, err := cs.HostAddrs(cfg.ConnConfig)
	if err != nil {
		return nil, nil, err
	}
	if err := libpq.NoUnixSockets(cfg.ConnConfig); err != nil {
		return nil, nil, err
	}
	auth, err := b.authPolicy(cs, cfg.ConnConfig)
	if err != nil {
		return nil, nil, err
	}
	st := &State{tls: pol, log: b.Log, events: b.Events, expiryWarn: b.ExpiryWarn,
		loadBalance: cs.Get("load_balance_hosts").Value == libpq.LoadBalanceRandom}
	st.policy = &connect.Policy{
		TLS: pol, MinVersion: pol.MinVersion(), Direct: pol.Direct(), Auth: auth,
		QueryEveryConnection: b.QueryEvery || pol.ClientCertificate(), HostAddrs: hostAddrs, Observer: st,
	}
	if creds != nil {
		st.creds = creds
		st.policy.Credentials = creds
	}
	st.bind(cfg.ConnConfig)
	connect.Arm(&cfg.ConnConfig.Config, st.policy) // tripwires: BeforeConnect installs the pipeline per connection
	st.auth = libpq.AuthSettingsOf(cfg.ConnConfig)
	if b.MaxConns != nil {
		cfg.MaxConns = *b.MaxConns
	}
	if b.MinConns != nil {
		cfg.MinConns = *b.MinConns
	}
	st.hookPool(cfg, b.BeforeConnect, b.AfterConnect)
	return cfg, st, nil
}

// checkCallerTLS refuses TLS settings a ConfigurePool function put on the
// configuration: TLS is pgsecure's to configure.
func checkCallerTLS(cc *pgx.ConnConfig) error {
	for _, h := range libpq.Hosts(cc) {
		if *h.TLS != nil {
			return configErr("TLSConfig", "ConfigurePool", fmt.Sprintf("a TLS configuration was set for host %q", h.Host),
				"configure TLS with the Builder's options (RootCAFile, ClientCertFiles, MinTLSVersion, SPKIPins) instead")
		}
	}
	return nil
}

// StartupCheck opens one connection and makes sure the server described
// it: its proof ran under WithServerQuery, so the report holds the
// server's view; should the connection have been opened without Build's
// context, the server is asked now.
func (st *State) StartupCheck(ctx context.Context, pool *pgxpool.Pool) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return connect.QueryServer(ctx, st.policy, c.Conn().PgConn())
}

// progressEvery is how often a slow Build logs which host and stage it is
// waiting for.
const progressEvery = 3 * time.Second

// LogProgress logs, every few seconds until stop is called, which host
// and stage a slow start is waiting for.
func (st *State) LogProgress(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if host, stage, elapsed, ok := st.policy.Progress(); ok {
					st.log().LogAttrs(ctx, slog.LevelInfo, "pgsecure: still connecting", slog.String("host", host),
						slog.String("stage", string(stage)), slog.Duration("elapsed", elapsed.Round(time.Millisecond)))
				}
			}
		}
	}()
	return func() { close(done) }
}

// Options are what a Builder holds, for Configure.
type Options struct {
	ConnString     secrets.Secret
	Env            func(string) (string, bool)
	TLS            *tlspolicy.Options
	ConfigurePool  []func(*pgxpool.Config)
	Credentials    secrets.Source
	CacheOptions   secrets.CacheOptions
	QueryEvery     bool
	ChannelBinding bool
	MaxConns       *int32
	MinConns       *int32
	BeforeConnect  []func(context.Context, *pgx.ConnConfig) error
	AfterConnect   []func(context.Context, *pgx.Conn) error
	ExpiryWarn     time.Duration
	Log            func() *slog.Logger
	Events         Events
}
