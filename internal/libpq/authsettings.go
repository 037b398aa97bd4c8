package libpq

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AuthSettings are the authentication settings of a ConnConfig as pgsecure
// built it. A per-connection copy whose settings differ (changed on what
// Config returned, or by a BeforeConnect hook) is refused before dialling,
// as the TLS configuration is: lowering ChannelBinding would let a peer
// holding a trusted certificate obtain an unbound SCRAM proof, widening
// RequireAuth a password, SSLCertMode=disable or allow would drop the
// client certificate requirement, and the Kerberos names choose whose
// service ticket is requested.
//
// Not re-checked: User and Password (the credentials themselves; which
// method may receive them is the policy's), OAuthTokenProvider (used only
// when the policy allows oauth), BuildFrontend (pgsecure's authentication
// watch is installed around it again on every connection), and
// MaxProtocolMessageBodyLen (pgsecure bounds what arrives before
// authentication itself; a caller's limit can only be stricter).
type AuthSettings struct {
	requireAuth, channelBinding, sslCertMode, krbSrvName, krbSpn string
}

func AuthSettingsOf(cc *pgx.ConnConfig) AuthSettings {
	return AuthSettings{requireAuth: cc.RequireAuth, channelBinding: cc.ChannelBinding, sslCertMode: cc.SSLCertMode,
		krbSrvName: cc.KerberosSrvName, krbSpn: cc.KerberosSpn}
}

// recheck refuses cc when one of its authentication settings differs from
// what pgsecure built; from says what changed it.
func (built AuthSettings) Recheck(cc *pgx.ConnConfig, from string) error {
	now := AuthSettingsOf(cc)
	for _, f := range []struct{ field, key, was, is string }{
		{"RequireAuth", "require_auth", built.requireAuth, now.requireAuth},
		{"ChannelBinding", "channel_binding (or Builder.RequireChannelBinding)", built.channelBinding, now.channelBinding},
		{"SSLCertMode", "sslcertmode", built.sslCertMode, now.sslCertMode},
		{"KerberosSrvName", "krbsrvname", built.krbSrvName, now.krbSrvName},
		{"KerberosSpn", "krbspn", built.krbSpn, now.krbSpn},
	} {
		if f.is != f.was {
			return configErr(f.field, from, fmt.Sprintf("%q was set after pgsecure built the configuration (it was %q)", f.is, f.was),
				"use "+f.key+" in the connection string")
		}
	}
	return nil
}
