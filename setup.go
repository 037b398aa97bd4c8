package pgsecure

import (
	"crypto/tls"
	"fmt"
	"github.com/pgsecure/pgsecure/internal/libpq"
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
func (b *Builder) policy(cs *libpq.Settings) (*tlsPolicy, error) {
	if err := libpq.CheckSettings(cs); err != nil {
		return nil, err
	}
	pol := &tlsPolicy{minVersion: tls.VersionTLS12, sni: true, now: b.now}
	if s := cs.Get("sslsni"); s.Set && s.Value == "0" {
		pol.sni = false
	}
	if s := cs.Get("sslnegotiation"); s.Set && s.Value == "direct" {
		pol.direct = true
	}
	if s := cs.Get("ssl_min_protocol_version"); s.Set {
		pol.minVersion, _ = libpq.TLSVersion(s.Value) // validated by checkSettings
	}
	if b.minVersion > pol.minVersion {
		pol.minVersion = b.minVersion
	}
	if s := cs.Get("ssl_max_protocol_version"); s.Set {
		pol.maxVersion, _ = libpq.TLSVersion(s.Value)
		if pol.maxVersion < pol.minVersion {
			return nil, configErr("ssl_max_protocol_version", s.From,
				fmt.Sprintf("%s is below the minimum %s", s.Value, verify.VersionName(pol.minVersion)), "raise it or remove it")
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
func (b *Builder) rootSource(cs *libpq.Settings) (rootSource, error) {
	dsn := cs.Get("sslrootcert")
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
	case len(fromBuilder) == 1 && dsn.Set && !(b.rootFile != "" && libpq.SamePath(b.rootFile, dsn.Value)):
		return nil, configErr("sslrootcert", dsn.From,
			fmt.Sprintf("conflicts with %s; pgsecure will not guess which to trust", shared.Spell(fromBuilder[0])),
			"remove one of them")
	}
	switch {
	case b.systemRoots || dsn.Value == "system":
		r, err := systemRoots()
		if err != nil {
			return nil, &ConfigError{Setting: "sslrootcert", From: dsn.From, Problem: "cannot load the system CA store", Err: err}
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
		path, from = dsn.Value, dsn.From
	}
	if path == "" {
		fix := "set " + shared.SSLRootCert + " to the CA that issued the server certificate; use " + shared.SystemRoots + " only for publicly-issued server certificates"
		if home, err := os.UserHomeDir(); err == nil {
			if p := filepath.Join(home, ".postgresql", "root.crt"); libpq.FileExists(p) {
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
func (b *Builder) rootsFrom(cs *libpq.Settings) string {
	switch {
	case b.rootFile != "":
		return "RootCAFile"
	case len(b.rootPEM) > 0:
		return "RootCAPEM"
	case b.systemRoots:
		return "SystemRoots"
	}
	if s := cs.Get("sslrootcert"); strings.HasSuffix(s.From, "environment variable") {
		return "PGSSLROOTCERT"
	}
	return "sslrootcert"
}

// authPolicy decides which authentication methods are allowed: by default
// only scram-sha-256; require_auth (connection string or PGREQUIREAUTH) may
// widen it, with a warning. channel_binding is honoured; the builder's
// RequireChannelBinding forces require.
func (b *Builder) authPolicy(cs *libpq.Settings, cc *pgx.ConnConfig) (connect.AuthPolicy, error) {
	pol := connect.SCRAMOnly()
	if s := cs.Get("require_auth"); s.Set {
		p, err := connect.ParseRequireAuth(s.Value)
		if err != nil {
			return connect.AuthPolicy{}, err // checkSettings reported it already
		}
		pol = p
		if pol.WeakerThanSCRAM() {
			b.log().Warn("pgsecure: require_auth allows more than scram-sha-256; a server asking for these methods will receive the password or a hash of it (inside TLS)",
				slog.String("require_auth", pol.String()), slog.String("from", s.From))
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
