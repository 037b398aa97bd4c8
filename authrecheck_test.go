package pgsecure_test

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoweredChannelBindingRefused: channel binding required (by the
// builder or by channel_binding=require), then lowered on what Config
// returned. Through a proxy holding a trusted certificate that strips
// SCRAM-SHA-256-PLUS (or with binding disabled altogether) the client would
// send an unbound SCRAM exchange whose proof can be guessed offline. With
// the pool's BeforeConnect kept, the re-check refuses the changed setting
// before dialling; lowered on the connection's copy after pgsecure's
// BeforeConnect (by a hook wrapped around it), the authentication watch
// refuses before the first SCRAM message.
func TestLoweredChannelBindingRefused(t *testing.T) {
	t.Parallel()
	s := newProxySetup(t)
	ctx := ctxT(t)
	for _, row := range []struct {
		name      string
		viaDSN    bool // channel_binding=require in the connection string, not the builder
		lowered   string
		strip     bool
		replaceBC bool
	}{
		{name: "builder, prefer, PLUS stripped, BeforeConnect kept", lowered: "prefer", strip: true},
		{name: "builder, prefer, PLUS stripped, lowered after BeforeConnect", lowered: "prefer", strip: true, replaceBC: true},
		{name: "dsn, prefer, PLUS stripped, lowered after BeforeConnect", viaDSN: true, lowered: "prefer", strip: true, replaceBC: true},
		{name: "builder, disable, PLUS offered, lowered after BeforeConnect", lowered: "disable", replaceBC: true},
		{name: "dsn, disable, PLUS offered, BeforeConnect kept", viaDSN: true, lowered: "disable"},
	} {
		t.Run(row.name, func(t *testing.T) {
			p := testutil.StartSCRAMProxy(t, s.proxyCert, s.route(testutil.SCRAMProxyOptions{StripPlus: row.strip}, false))
			var events eventLog
			b := pgsecure.NewBuilder(proxyDSN(p)).RootCAFile(s.pki.CAFile).OnEvent(events.add)
			if row.viaDSN {
				b = pgsecure.NewBuilder(proxyDSN(p) + "&channel_binding=require").RootCAFile(s.pki.CAFile).OnEvent(events.add)
			} else {
				b = b.RequireChannelBinding()
			}
			cfg, err := b.Config(ctx)
			require.NoError(t, err)
			require.Equal(t, "require", cfg.ConnConfig.ChannelBinding)
			if row.replaceBC {
				afterPgsecure(cfg, func(cc *pgx.ConnConfig) { cc.ChannelBinding = row.lowered })
			} else {
				cfg.ConnConfig.ChannelBinding = row.lowered
			}
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			require.NoError(t, err)
			defer pool.Close()
			err = pool.Ping(ctx)
			require.Error(t, err, "the unbound exchange was allowed")
			assert.NotContains(t, err.Error(), appPassword)
			if row.replaceBC {
				require.ErrorIs(t, err, pgsecure.ErrInsecureAuth)
				assert.Contains(t, err.Error(), "channel binding")
				assert.Equal(t, []pgsecure.RefusalKind{pgsecure.RefusedAuthMethod}, events.refusals())
				ex := p.Exchanges()
				require.Len(t, ex, 1, "one connection reached the proxy")
				assert.Empty(t, ex[0].Chosen, "no SASLInitialResponse reached the proxy")
			} else {
				require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
				assert.Contains(t, err.Error(), "ChannelBinding")
				assert.Contains(t, err.Error(), "channel_binding")
				assert.Equal(t, []pgsecure.RefusalKind{pgsecure.RefusedConfiguration}, events.refusals())
				assert.Empty(t, p.Exchanges(), "nothing was dialled")
			}
			assert.NotContains(t, string(p.Decrypted()), testutil.SCRAMSHA256, "no SCRAM message reached the proxy")
			assert.NotContains(t, string(p.Decrypted()), ",p=", "no SCRAM client proof reached the proxy")
			assert.False(t, bytes.Contains(p.Wire(), []byte(appPassword)))
		})
	}
}

// TestAuthSettingsRechecked: every authentication setting of the
// ConnConfig, changed on what Config returned, is refused by the pool's
// BeforeConnect, naming the field (the server is never dialled).
func TestAuthSettingsRechecked(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := testutil.AnswerN(t)
	pki := testutil.NewPKI(t)
	for _, row := range []struct {
		field string
		apply func(*pgx.ConnConfig)
	}{
		{"RequireAuth", func(cc *pgx.ConnConfig) { cc.RequireAuth = "md5" }},
		{"ChannelBinding", func(cc *pgx.ConnConfig) { cc.ChannelBinding = "disable" }},
		{"SSLCertMode", func(cc *pgx.ConnConfig) { cc.SSLCertMode = "disable" }},
		{"KerberosSrvName", func(cc *pgx.ConnConfig) { cc.KerberosSrvName = "other" }},
		{"KerberosSpn", func(cc *pgx.ConnConfig) { cc.KerberosSpn = "other/host" }},
	} {
		t.Run(row.field, func(t *testing.T) {
			cfg, err := pgsecure.NewBuilder(peerDSN(p, "127.0.0.1")).RootCAFile(pki.CAFile).Config(ctx)
			require.NoError(t, err)
			row.apply(cfg.ConnConfig)
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			require.NoError(t, err)
			defer pool.Close()
			conns := p.Conns()
			err = pool.Ping(ctx)
			require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
			var ce *pgsecure.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, row.field, ce.Setting)
			assert.Equal(t, conns, p.Conns(), "nothing was dialled")
		})
	}
}
