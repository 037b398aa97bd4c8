package tlspolicy

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"reflect"
	"runtime"
	"slices"

	"github.com/pgsecure/pgsecure/verify"

	"github.com/pgsecure/pgsecure/internal/keyfile"
)

// clientCert is the client certificate pgsecure presents when a server asks
// for one (pg_hba.conf clientcert=verify-ca/verify-full or cert
// authentication). Its getClientCertificate is installed as
// tls.Config.GetClientCertificate, so each handshake uses the pair current at
// that moment.
type clientCert struct {
	pair func() *tls.Certificate
}

// newClientCertFiles loads a certificate file (leaf first, optionally
// followed by intermediates) and its private key file. Both are re-read when
// either changes, so a renewed pair on disk is used by the next handshake; a
// half-written or mismatched pair keeps the last good one and logs a
// warning. The key file must pass checkKeyMode at every load.
// passphrase is called only when the key is encrypted. The first load must
// succeed; its error is a *verify.ConfigError naming the file concerned.
func newClientCertFiles(certPath, keyPath string, passphrase func() ([]byte, error), logger func() *slog.Logger) (*clientCert, error) {
	load := func() (*tls.Certificate, error) {
		if swapped(certPath, keyPath) {
			return nil, configErr("sslcert", "", fmt.Sprintf("the certificate and key look swapped: %s holds a private key and %s a certificate", certPath, keyPath),
				"exchange the two paths (sslcert is the certificate, sslkey the private key)")
		}
		certPEM, err := readPEMFile(certPath, nil)
		if err != nil {
			return nil, &verify.ConfigError{Setting: "sslcert", Problem: "cannot read the client certificate file", Err: err}
		}
		keyPEM, err := readKeyFile(keyPath)
		if err != nil {
			return nil, err
		}
		return loadClientPair(certPEM, keyPEM, passphrase, pairNames{
			certSetting: "sslcert", keySetting: "sslkey", passSetting: "sslpassword",
			cert: "certificate file " + certPath, key: "file " + keyPath,
		})
	}
	what := fmt.Sprintf("client certificate file %s and key file %s", certPath, keyPath)
	rel, err := newReloading(what, []string{certPath, keyPath}, load, logger)
	if err != nil {
		return nil, err
	}
	return &clientCert{pair: rel.get}, nil
}

// swapped reports whether the certificate path holds a private key and the
// key path a certificate: the one mistake that otherwise reads as a
// permission problem (a certificate is world-readable) and then as "no
// certificate".
func swapped(certPath, keyPath string) bool {
	cert, err1 := readPEMFile(certPath, nil)
	key, err2 := readPEMFile(keyPath, nil)
	return err1 == nil && err2 == nil && bytes.Contains(cert, []byte("PRIVATE KEY-----")) &&
		bytes.Contains(key, []byte("-----BEGIN CERTIFICATE-----"))
}

// newClientCertPEM is newClientCertFiles for a pair held in memory.
func newClientCertPEM(certPEM, keyPEM []byte, passphrase func() ([]byte, error)) (*clientCert, error) {
	pair, err := loadClientPair(certPEM, keyPEM, passphrase, pairNames{
		certSetting: "ClientCertPEM", keySetting: "ClientCertPEM", passSetting: "ClientKeyPassphrase",
		cert: "certificate given to ClientCertPEM", key: "given to ClientCertPEM",
	})
	if err != nil {
		return nil, err
	}
	return &clientCert{pair: func() *tls.Certificate { return pair }}, nil
}

// getClientCertificate returns the current pair, with the intermediates the
// certificate file holds. It never fails: the last good pair is always
// available.
func (c *clientCert) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.pair(), nil
}

// current returns the leaf certificate of the current pair.
func (c *clientCert) current() *x509.Certificate {
	return c.pair().Leaf
}

// pairNames says how errors name the certificate and key and their settings.
type pairNames struct {
	certSetting, keySetting, passSetting string
	cert, key                            string
}

// loadClientPair parses and cross-checks a certificate chain and its key.
func loadClientPair(certPEM, keyPEM []byte, passphrase func() ([]byte, error), n pairNames) (*tls.Certificate, error) {
	certs, err := parsePEMCerts(certPEM)
	if err != nil {
		return nil, &verify.ConfigError{Setting: n.certSetting, Problem: "cannot use the " + n.cert, Err: err}
	}
	if len(certs) == 0 {
		return nil, configErr(n.certSetting, "", "the "+n.cert+" contains no PEM \"CERTIFICATE\" block",
			"a DER file can be converted with: openssl x509 -inform der -in FILE -out FILE.pem")
	}
	leaf := certs[0]
	chain := make([][]byte, len(certs))
	for i, c := range certs {
		chain[i] = c.Raw
	}
	key, err := keyfile.Parse(keyPEM, passphrase)
	if err != nil {
		return nil, keyProblem(n.keySetting, n.passSetting, n.key, err)
	}
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, configErr(n.keySetting, "",
			fmt.Sprintf("the key %s does not belong to the %s (subject %q)", n.key, n.cert, leaf.Subject.String()),
			"use the key the certificate was issued for (compare openssl x509 -in CERT -noout -pubkey with openssl pkey -in KEY -pubout)")
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) &&
		!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil, configErr(n.certSetting, "",
			fmt.Sprintf("the %s (subject %q) is not valid for TLS client authentication, so the server would refuse it", n.cert, leaf.Subject.String()),
			"reissue it with extendedKeyUsage=clientAuth")
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// checkKeyMode applies libpq's rule for private key files (see
// fe-secure-openssl.c) to the opened file path, described by fi: on Unix it
// must be a regular file without group or world access, except that a
// root-owned file may be group-readable (at most 0640), so system-wide keys
// can be shared through a group. The
// error wraps shared.ErrInsecureConfig and gives the chmod command. Windows has no
// such modes and is not checked, as in libpq.
func checkKeyMode(path string, fi fs.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if !fi.Mode().IsRegular() {
		return configErr("sslkey", "", fmt.Sprintf("private key file %s is not a regular file", path), "point it at the key file itself")
	}
	perm := fi.Mode().Perm()
	if ownedByRoot(fi) {
		if perm&0o037 != 0 {
			return configErr("sslkey", "", fmt.Sprintf("private key file %s has group or world access (mode %04o)", path, perm),
				fmt.Sprintf("run chmod 0640 %s (a root-owned key may be readable by its group, no more)", path))
		}
		return nil
	}
	if perm&0o077 != 0 {
		return configErr("sslkey", "", fmt.Sprintf("private key file %s has group or world access (mode %04o)", path, perm),
			fmt.Sprintf("run chmod 0600 %s", path))
	}
	return nil
}

// ownedByRoot reports whether the file's owner is uid 0. On every Unix
// fi.Sys() is a *syscall.Stat_t with a Uid field; it is read by reflection so
// that this file builds on every platform without build tags. A platform
// without the field counts as "not root", which applies the stricter rule.
func ownedByRoot(fi fs.FileInfo) bool {
	v := reflect.ValueOf(fi.Sys())
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return false
	}
	uid := v.FieldByName("Uid")
	return uid.IsValid() && uid.CanUint() && uid.Uint() == 0
}

// readKeyFile opens a private key file, checks the permissions of the file
// actually opened (not of whatever the path points to a moment later) and
// reads it.
func readKeyFile(path string) ([]byte, error) {
	b, err := readPEMFile(path, func(fi fs.FileInfo) error { return checkKeyMode(path, fi) })
	var ce *verify.ConfigError
	if err != nil && !errors.As(err, &ce) {
		return nil, &verify.ConfigError{Setting: "sslkey", Problem: "cannot read the private key file", Err: err}
	}
	return b, err
}
