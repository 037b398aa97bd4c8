package tlspolicy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgsecure/pgsecure/internal/libpq"
	"github.com/pgsecure/pgsecure/internal/shared"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/pgsecure/pgsecure/verify"
)

// New decides the TLS policy from the Builder's options and the
// connection settings. The errors are *verify.ConfigError.
func New(b *Options, cs *libpq.Settings) (*Policy, error) {
	if err := libpq.CheckSettings(cs); err != nil {
		return nil, err
	}
	pol := &Policy{minVersion: tls.VersionTLS12, sni: true, now: b.Now, sessions: tls.NewLRUClientSessionCache(64)}
	if s := cs.Get("sslsni"); s.Set && s.Value == "0" {
		pol.sni = false
	}
	if s := cs.Get("sslnegotiation"); s.Set && s.Value == "direct" {
		pol.direct = true
	}
	if s := cs.Get("ssl_min_protocol_version"); s.Set {
		pol.minVersion, _ = libpq.TLSVersion(s.Value) // validated by checkSettings
	}
	if b.MinVersion > pol.minVersion {
		pol.minVersion = b.MinVersion
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
	pol.pins = b.Pins
	if pol.crls, err = b.crlSource(cs); err != nil {
		return nil, err
	}
	return pol, nil
}

// rootSource picks the pinned CA: exactly one of the builder's RootCAFile /
// RootCAPEM / SystemRoots and the sslrootcert setting (connection string or
// PGSSLROOTCERT), unless they name the same file.
func (b *Options) rootSource(cs *libpq.Settings) (rootSource, error) {
	dsn := cs.Get("sslrootcert")
	var fromBuilder []string
	if b.RootFile != "" {
		fromBuilder = append(fromBuilder, "RootCAFile")
	}
	if len(b.RootPEM) > 0 {
		fromBuilder = append(fromBuilder, "RootCAPEM")
	}
	if b.SystemRoots {
		fromBuilder = append(fromBuilder, "SystemRoots")
	}
	switch {
	case len(fromBuilder) > 1:
		spelled := make([]string, len(fromBuilder))
		for i, o := range fromBuilder {
			spelled[i] = shared.Spell(o)
		}
		return nil, configErr(fromBuilder[0], "builder", "more than one trust anchor given: "+strings.Join(spelled, ", "), "use exactly one")
	case len(fromBuilder) == 1 && dsn.Set && !(b.RootFile != "" && libpq.SamePath(b.RootFile, dsn.Value)):
		return nil, configErr("sslrootcert", dsn.From,
			fmt.Sprintf("conflicts with %s; pgsecure will not guess which to trust", shared.Spell(fromBuilder[0])),
			"remove one of them")
	}
	switch {
	case b.SystemRoots || dsn.Value == "system":
		r, err := systemRoots()
		if err != nil {
			return nil, &verify.ConfigError{Setting: "sslrootcert", From: dsn.From, Problem: "cannot load the system CA store", Err: err}
		}
		return r, nil
	case len(b.RootPEM) > 0:
		r, err := parseRoots(b.RootPEM, "RootCAPEM")
		if err != nil {
			return nil, &verify.ConfigError{Setting: "RootCAPEM", From: "builder", Problem: "unusable", Err: err}
		}
		return staticRoots{r: r}, nil
	}
	path, from := b.RootFile, "builder"
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
	r, err := newFileRoots(path, b.Log)
	if err != nil {
		setting := "sslrootcert"
		if from == "builder" {
			setting = "RootCAFile"
		}
		return nil, &verify.ConfigError{Setting: setting, From: from, Problem: "cannot load the CA file", Err: err,
			Fix: "check the path and that the file holds PEM CERTIFICATE blocks"}
	}
	return r, nil
}

// rootsFrom names the setting the pinned roots came from, as the user wrote
// it.
func (b *Options) rootsFrom(cs *libpq.Settings) string {
	switch {
	case b.RootFile != "":
		return "RootCAFile"
	case len(b.RootPEM) > 0:
		return "RootCAPEM"
	case b.SystemRoots:
		return "SystemRoots"
	}
	if s := cs.Get("sslrootcert"); strings.HasSuffix(s.From, "environment variable") {
		return "PGSSLROOTCERT"
	}
	return "sslrootcert"
}

// clientCertificate decides the client certificate from the builder and the
// sslcert/sslkey/sslpassword settings.
func (b *Options) clientCertificate(cs *libpq.Settings) (*clientCert, error) {
	certS, keyS, passS := cs.Get("sslcert"), cs.Get("sslkey"), cs.Get("sslpassword")
	fromBuilder := b.ClientCertFile != "" || len(b.ClientCertPEM) > 0
	if b.ClientCertFile != "" && len(b.ClientCertPEM) > 0 {
		return nil, configErr("ClientCertFiles", "builder", "both ClientCertFiles and ClientCertPEM were given", "use one")
	}
	if fromBuilder && (certS.Set || keyS.Set) &&
		!(libpq.SamePath(b.ClientCertFile, certS.Value) && libpq.SamePath(b.ClientKeyFile, keyS.Value)) {
		return nil, configErr("sslcert", certS.From+keyS.From, "conflicts with the client certificate given to the builder", "remove one of them")
	}
	if certS.Set != keyS.Set && !fromBuilder {
		missing, have := "sslkey", certS
		if keyS.Set {
			missing, have = "sslcert", keyS
		}
		return nil, configErr(missing, "", fmt.Sprintf("is missing while %s is set (from %s)", map[string]string{"sslkey": "sslcert", "sslcert": "sslkey"}[missing], have.From),
			"give both the client certificate and its key")
	}
	if passS.Set && b.KeyPassphrase != nil {
		return nil, configErr("sslpassword", passS.From, "conflicts with ClientKeyPassphrase", "use one of them")
	}
	passphrase := func() ([]byte, error) { return nil, nil }
	switch {
	case b.KeyPassphrase != nil:
		fn := b.KeyPassphrase
		passphrase = func() ([]byte, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return fn(ctx)
		}
	case passS.Set:
		pw := passS.Value
		passphrase = func() ([]byte, error) { return []byte(pw), nil }
	}
	var (
		cc   *clientCert
		err  error
		from = "builder"
	)
	switch {
	case len(b.ClientCertPEM) > 0:
		cc, err = newClientCertPEM(b.ClientCertPEM, []byte(b.ClientKeyPEM.Reveal()), passphrase)
	case b.ClientCertFile != "":
		cc, err = newClientCertFiles(b.ClientCertFile, b.ClientKeyFile, passphrase, b.Log)
	case certS.Set:
		from = certS.From
		cc, err = newClientCertFiles(certS.Value, keyS.Value, passphrase, b.Log)
	}
	var ce *verify.ConfigError
	if errors.As(err, &ce) && ce.From == "" {
		ce.From = from
		if from != "builder" { // name the setting the problem is about, from where it was set
			switch ce.Setting {
			case "sslkey":
				ce.From = keyS.From
			case "sslpassword":
				ce.From = passS.From
			}
		}
	}
	return cc, err
}

// Options are the TLS settings a Builder holds; New combines them with the
// connection string's (sslrootcert, sslcert, sslkey, sslpassword, sslsni,
// sslnegotiation, ssl_min/max_protocol_version, sslcrl, sslcrldir).
type Options struct {
	Now                           func() time.Time
	Log                           func() *slog.Logger
	MinVersion                    uint16
	RootFile                      string
	RootPEM                       []byte
	SystemRoots                   bool
	ClientCertFile, ClientKeyFile string
	ClientCertPEM                 []byte
	ClientKeyPEM                  secrets.Secret
	KeyPassphrase                 func(ctx context.Context) ([]byte, error)
	Pins                          []string
	CRLFiles, CRLDirs             []string
	ExpiryWarn                    time.Duration // CRLs close to their nextUpdate warn within it
}

func configErr(setting, from, problem, fix string) error {
	return &verify.ConfigError{Setting: setting, From: from, Problem: problem, Fix: fix}
}
