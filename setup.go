package pgsecure

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/verify"
)

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
	pol.rootsFrom = b.rootsFrom(cs)
	cc, err := b.clientCertificate(cs)
	if err != nil {
		return nil, err
	}
	if cc != nil { // keep the interface nil when there is no certificate
		pol.clientCert = cc
	}
	pol.pins = b.pins
	if pol.crls, err = b.crlSource(cs); err != nil {
		return nil, err
	}
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
		spelled := make([]string, len(fromBuilder))
		for i, o := range fromBuilder {
			spelled[i] = shared.Spell(o)
		}
		return nil, configErr(fromBuilder[0], "builder", "more than one trust anchor given: "+strings.Join(spelled, ", "), "use exactly one")
	case len(fromBuilder) == 1 && dsn.set && !(b.rootFile != "" && samePath(b.rootFile, dsn.value)):
		return nil, configErr("sslrootcert", dsn.from,
			fmt.Sprintf("conflicts with %s; pgsecure will not guess which to trust", shared.Spell(fromBuilder[0])),
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
		fix := "set " + shared.SSLRootCert + " to the CA that issued the server certificate; use " + shared.SystemRoots + " only for publicly-issued server certificates"
		if home, err := os.UserHomeDir(); err == nil {
			if p := filepath.Join(home, ".postgresql", "root.crt"); fileExists(p) {
				fix = fmt.Sprintf("%s exists but pgsecure does not trust it implicitly; pass it explicitly with sslrootcert=%s if it is the right CA", p, p)
			}
		}
		return nil, configErr("sslrootcert", "", "no CA certificate given, so the server cannot be verified", fix)
	}
	r, err := newFileRoots(path, b.log)
	if err != nil {
		setting := "sslrootcert"
		if from == "builder" {
			setting = "RootCAFile"
		}
		return nil, &ConfigError{Setting: setting, From: from, Problem: "cannot load the CA file", Err: err,
			Fix: "check the path and that the file holds PEM CERTIFICATE blocks"}
	}
	return r, nil
}

// rootsFrom names the setting the pinned roots came from, as the user wrote
// it.
func (b *Builder) rootsFrom(cs *connSettings) string {
	switch {
	case b.rootFile != "":
		return "RootCAFile"
	case len(b.rootPEM) > 0:
		return "RootCAPEM"
	case b.systemRoots:
		return "SystemRoots"
	}
	if s := cs.get("sslrootcert"); strings.HasSuffix(s.from, "environment variable") {
		return "PGSSLROOTCERT"
	}
	return "sslrootcert"
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
func (b *Builder) authPolicy(cs *connSettings, cc *pgx.ConnConfig) (connect.AuthPolicy, error) {
	pol := connect.SCRAMOnly()
	if s := cs.get("require_auth"); s.set {
		p, err := connect.ParseRequireAuth(s.value)
		if err != nil {
			return connect.AuthPolicy{}, err // checkSettings reported it already
		}
		pol = p
		if pol.WeakerThanSCRAM() {
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
	if cc.ChannelBinding == "require" {
		pol = pol.WithChannelBinding() // held by the authentication watch, whatever ChannelBinding says later
	}
	return pol, nil
}
