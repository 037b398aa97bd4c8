package pool

import (
	"log/slog"

	"github.com/pgsecure/pgsecure/internal/libpq"
	"github.com/pgsecure/pgsecure/verify"

	"github.com/jackc/pgx/v5"
	"github.com/pgsecure/pgsecure/internal/connect"
)

// authPolicy decides which authentication methods are allowed: by default
// only scram-sha-256; require_auth (connection string or PGREQUIREAUTH) may
// widen it, with a warning. channel_binding is honoured; the builder's
// RequireChannelBinding forces require.
func (b *Options) authPolicy(cs *libpq.Settings, cc *pgx.ConnConfig) (connect.AuthPolicy, error) {
	pol := connect.SCRAMOnly()
	if s := cs.Get("require_auth"); s.Set {
		p, err := connect.ParseRequireAuth(s.Value)
		if err != nil {
			return connect.AuthPolicy{}, err // checkSettings reported it already
		}
		pol = p
		if pol.WeakerThanSCRAM() {
			b.Log().Warn("pgsecure: require_auth allows more than scram-sha-256; a server asking for these methods will receive the password or a hash of it (inside TLS)",
				slog.String("require_auth", pol.String()), slog.String("from", s.From))
		}
	}
	if b.ChannelBinding {
		cc.ChannelBinding = "require"
	}
	if cc.ChannelBinding == "disable" {
		b.Log().Warn("pgsecure: channel_binding=disable: SCRAM will not be bound to the TLS channel")
	}
	if cc.ChannelBinding == "require" {
		pol = pol.WithChannelBinding() // held by the authentication watch, whatever ChannelBinding says later
	}
	return pol, nil
}

func configErr(setting, from, problem, fix string) error {
	return &verify.ConfigError{Setting: setting, From: from, Problem: problem, Fix: fix}
}
