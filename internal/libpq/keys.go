// Package libpq knows libpq's connection settings: one table of keys, their
// environment variables and what pgsecure does with each, and parsers for
// libpq's two connection-string forms. The root package and cmd/pgsecure
// both use it.
package libpq

// Key is one libpq connection setting.
type Key struct {
	// Name is the connection-string key ("sslmode").
	Name string
	// Env is its environment variable ("PGSSLMODE"), or "" when it has none.
	Env string
	// Refused, when set, says why pgsecure refuses the key and what to do.
	Refused string
	// Secret marks a key whose value must never be copied into a string
	// that could be printed.
	Secret bool
}

const (
	gssUnsupported   = "GSSAPI is not supported by pgsecure; remove it"
	oauthUnsupported = "OAuth authentication is not supported by pgsecure; remove it"
	scramKeys        = "pre-computed SCRAM keys are not supported; remove it and give the password"
)

// Keys is every libpq setting pgsecure knows, in libpq's documentation
// order. PGPASSWORD is deliberately absent: a password is never copied
// into a connection string that could be printed.
var Keys = []Key{
	{Name: "host", Env: "PGHOST"},
	{Name: "hostaddr", Env: "PGHOSTADDR"},
	{Name: "port", Env: "PGPORT"},
	{Name: "dbname", Env: "PGDATABASE"},
	{Name: "user", Env: "PGUSER"},
	{Name: "passfile", Env: "PGPASSFILE"},
	{Name: "require_auth", Env: "PGREQUIREAUTH"},
	{Name: "channel_binding", Env: "PGCHANNELBINDING"},
	{Name: "connect_timeout", Env: "PGCONNECT_TIMEOUT"},
	{Name: "options", Env: "PGOPTIONS"},
	{Name: "application_name", Env: "PGAPPNAME"},
	{Name: "fallback_application_name"},
	{Name: "keepalives"},
	{Name: "keepalives_idle"},
	{Name: "keepalives_interval"},
	{Name: "keepalives_count"},
	{Name: "tcp_user_timeout", Refused: "pgx does not implement tcp_user_timeout (it would be sent to the server, which rejects it); remove it, " +
		"and use keepalives_idle/keepalives_interval/keepalives_count or connect_timeout"},
	{Name: "sslmode", Env: "PGSSLMODE"},
	{Name: "requiressl", Env: "PGREQUIRESSL", Refused: "requiressl is a deprecated alias for sslmode=require; remove it (pgsecure always uses verify-full)"},
	{Name: "ssl", Refused: "ssl=true is an alias for sslmode=require; remove it (pgsecure always uses verify-full)"},
	{Name: "sslnegotiation", Env: "PGSSLNEGOTIATION"},
	{Name: "sslcompression", Env: "PGSSLCOMPRESSION", Refused: "TLS compression is insecure (CRIME) and unsupported; remove it"},
	{Name: "sslcert", Env: "PGSSLCERT"},
	{Name: "sslkey", Env: "PGSSLKEY"},
	{Name: "sslkeylogfile", Env: "PGSSLKEYLOGFILE", Refused: "writing TLS session keys to a file defeats encryption; remove it"},
	{Name: "sslpassword", Env: "PGSSLPASSWORD", Secret: true},
	{Name: "sslcertmode", Env: "PGSSLCERTMODE"},
	{Name: "sslrootcert", Env: "PGSSLROOTCERT"},
	{Name: "sslcrl", Env: "PGSSLCRL"},
	{Name: "sslcrldir", Env: "PGSSLCRLDIR"},
	{Name: "sslsni", Env: "PGSSLSNI"},
	{Name: "requirepeer", Env: "PGREQUIREPEER", Refused: "requirepeer applies only to unix-socket connections, which pgsecure never makes; remove it"},
	{Name: "ssl_min_protocol_version", Env: "PGSSLMINPROTOCOLVERSION"},
	{Name: "ssl_max_protocol_version", Env: "PGSSLMAXPROTOCOLVERSION"},
	{Name: "min_protocol_version", Env: "PGMINPROTOCOLVERSION"},
	{Name: "max_protocol_version", Env: "PGMAXPROTOCOLVERSION"},
	{Name: "krbsrvname", Env: "PGKRBSRVNAME"},
	{Name: "gsslib", Env: "PGGSSLIB", Refused: gssUnsupported},
	{Name: "gssdelegation", Env: "PGGSSDELEGATION", Refused: gssUnsupported},
	{Name: "gssencmode", Env: "PGGSSENCMODE"},
	{Name: "service", Env: "PGSERVICE", Refused: "pg_service.conf entries are not read because settings there would bypass pgsecure's checks; put the service's settings in the connection string"},
	{Name: "target_session_attrs", Env: "PGTARGETSESSIONATTRS"},
	{Name: "load_balance_hosts", Env: "PGLOADBALANCEHOSTS"},
	{Name: "scram_client_key", Refused: scramKeys},
	{Name: "scram_server_key", Refused: scramKeys},
	{Name: "oauth_issuer", Refused: oauthUnsupported},
	{Name: "oauth_client_id", Refused: oauthUnsupported},
	{Name: "oauth_client_secret", Refused: oauthUnsupported, Secret: true},
	{Name: "oauth_scope", Refused: oauthUnsupported},
	{Name: "timezone", Env: "PGTZ"}, // a server parameter libpq also reads from the environment
}

var byName = func() map[string]Key {
	m := make(map[string]Key, len(Keys))
	for _, k := range Keys {
		m[k.Name] = k
	}
	return m
}()

// Lookup returns the key named name.
func Lookup(name string) (Key, bool) {
	k, ok := byName[name]
	return k, ok
}
