package pgsecure

import (
	"context"
	"errors"
	"fmt"
	"github.com/pgsecure/pgsecure/internal/libpq"
	"github.com/pgsecure/pgsecure/secrets"
	"time"
)

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

// SPKIPins additionally requires one certificate of the server's verified
// chain (leaf, intermediate or root) to have one of these public keys:
// base64 SHA-256 of the SubjectPublicKeyInfo, as SPKIPin computes it. Give
// the current and the next key's pin before rotating keys. Pinning the CA's
// key lets leaf certificates be renewed freely.
func (b *Builder) SPKIPins(pins ...string) *Builder {
	if err := parsePins(pins); err != nil {
		b.errs = append(b.errs, err)
	}
	b.pins = append(b.pins, pins...)
	return b
}

// clientCertificate decides the client certificate from the builder and the
// sslcert/sslkey/sslpassword settings.
func (b *Builder) clientCertificate(cs *libpq.Settings) (*clientCert, error) {
	certS, keyS, passS := cs.Get("sslcert"), cs.Get("sslkey"), cs.Get("sslpassword")
	fromBuilder := b.clientCertFile != "" || len(b.clientCertPEM) > 0
	if b.clientCertFile != "" && len(b.clientCertPEM) > 0 {
		return nil, configErr("ClientCertFiles", "builder", "both ClientCertFiles and ClientCertPEM were given", "use one")
	}
	if fromBuilder && (certS.Set || keyS.Set) &&
		!(libpq.SamePath(b.clientCertFile, certS.Value) && libpq.SamePath(b.clientKeyFile, keyS.Value)) {
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
	if passS.Set && b.keyPassphrase != nil {
		return nil, configErr("sslpassword", passS.From, "conflicts with ClientKeyPassphrase", "use one of them")
	}
	passphrase := func() ([]byte, error) { return nil, nil }
	switch {
	case b.keyPassphrase != nil:
		fn := b.keyPassphrase
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
	case len(b.clientCertPEM) > 0:
		cc, err = newClientCertPEM(b.clientCertPEM, []byte(b.clientKeyPEM.Reveal()), passphrase)
	case b.clientCertFile != "":
		cc, err = newClientCertFiles(b.clientCertFile, b.clientKeyFile, passphrase, b.log)
	case certS.Set:
		from = certS.From
		cc, err = newClientCertFiles(certS.Value, keyS.Value, passphrase, b.log)
	}
	var ce *ConfigError
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
