package pgsecure

import (
	"context"
	"slices"

	"github.com/pgsecure/pgsecure/internal/tlspolicy"
	"github.com/pgsecure/pgsecure/secrets"
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
	if err := tlspolicy.ParsePins(pins); err != nil {
		b.errs = append(b.errs, err)
	}
	b.pins = append(b.pins, pins...)
	return b
}

// CRLFiles makes every server certificate chain be checked against the
// certificate revocation lists in the given PEM files (each may hold several
// CRLs), as libpq's sslcrl: every certificate of the chain, the CAs'
// included, needs a current CRL of its issuer, and none may be listed as
// revoked. The files are re-read when they change, so a renewed CRL is used
// by the next new connection. CRLFiles, CRLDir, sslcrl and sslcrldir (or
// PGSSLCRL and PGSSLCRLDIR) add up: all the CRLs they name are used.
func (b *Builder) CRLFiles(paths ...string) *Builder {
	if len(paths) == 0 || slices.Contains(paths, "") {
		b.errs = append(b.errs, configErr("CRLFiles", "builder", "empty path", "pass the path of a PEM file of CRLs (as the CA makes them, e.g. openssl ca -gencrl -out FILE)"))
	}
	b.crlFiles = append(b.crlFiles, paths...)
	return b
}

// CRLDir makes every server certificate chain be checked against the
// certificate revocation lists of a directory laid out by `openssl rehash`
// (files named <issuer name hash>.r<n>), as libpq's sslcrldir. The files
// are looked up by the hash of each certificate's issuer and re-read when
// they change. See CRLFiles.
func (b *Builder) CRLDir(dir string) *Builder {
	if dir == "" {
		b.errs = append(b.errs, configErr("CRLDir", "builder", "empty path", "pass a directory prepared with openssl rehash"))
	}
	b.crlDirs = append(b.crlDirs, dir)
	return b
}

// Credentials makes each new connection take its user and password (and the
// host, port and database, when the source provides them) from src instead
// of the connection string and PGPASSWORD.
//
// Fetches go through secrets.Cached: a secrets.Cache (unless src is one
// already, or manages its own lifetime, as a Vault dynamic-credentials
// source does) that refreshes in the background before expiry without
// stalling callers, coalesces concurrent fetches into one backend call, and
// keeps serving unexpired credentials while the backend is down (the timing
// model is documented in package secrets).
// Config fetches once, so a source that cannot be reached fails Build at
// startup. Each connection remembers when the credentials it was opened
// with expire (a lease) and the pool retires it shortly before that,
// instead of shortening every connection's lifetime; a connection opened
// with a login token (secrets.Credentials.LoginToken: RDS IAM, Cloud SQL,
// AlloyDB, Entra ID) is kept, since the token matters only at login. When the server
// rejects a password (SQLSTATE 28P01), the credentials are invalidated (a
// rotating source may switch to its pending version) and the connection is
// retried with freshly fetched ones, within the same Acquire. While the
// source has nothing newer (a rotation half done: the secret changed before
// the database password, or after it), the login is tried again with short
// jittered backoff, within connect_timeout, with the source's current
// credentials and the previous ones (those this pool used before, or the
// source's own previous version, secrets.PreviousProvider), so either order
// converges as soon as the database and the secret agree. When they still
// disagree at the end of connect_timeout the error wraps
// ErrCredentialsRejected and the server's 28P01 and names the source. Fresh
// credentials rejected too end the connect with the server's error.
//
// src stays the caller's: pgsecure never closes it. A source holding leases
// (secrets.Closer) should be closed by the caller after the pool.
func (b *Builder) Credentials(src secrets.Source) *Builder {
	if src == nil {
		b.errs = append(b.errs, configErr("Credentials", "builder", "nil source", "pass a secrets.Source, e.g. from secrets.Open"))
	}
	b.creds = src
	return b
}

// CredentialCache tunes the cache Credentials puts in front of the source.
func (b *Builder) CredentialCache(o secrets.CacheOptions) *Builder {
	b.cacheOpts = o
	return b
}
