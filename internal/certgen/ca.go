package certgen

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"time"
)

// caValidity is how long NewCA and NewIntermediate certificates are valid.
const caValidity = 10 * 365 * 24 * time.Hour

// backdate is how far before "now" default validity windows start, so that a
// peer whose clock is slightly behind still accepts a fresh certificate.
const backdate = time.Hour

// CA is a certificate authority: a CA certificate and the key that signs the
// certificates it issues. CertPEM and KeyPEM are the PEM encodings of Cert and
// Key (KeyPEM is PKCS#8).
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA creates a self-signed root CA named commonName with a new key of type kt
// (ECDSAP256 when empty). The certificate is valid from one hour ago for ten
// years, has IsCA set and key usage CertSign|CRLSign.
func NewCA(commonName string, kt KeyType) (*CA, error) {
	return newCA(nil, commonName, kt)
}

// NewIntermediate creates an intermediate CA named commonName signed by parent.
// It may sign leaf certificates only (path length 0), and its validity never
// extends past its parent's.
func NewIntermediate(parent *CA, commonName string, kt KeyType) (*CA, error) {
	if parent == nil || parent.Cert == nil || parent.Key == nil {
		return nil, fmt.Errorf("%w: NewIntermediate needs a parent CA with a certificate and a key", ErrInvalidOptions)
	}
	return newCA(parent, commonName, kt)
}

func newCA(parent *CA, commonName string, kt KeyType) (*CA, error) {
	if commonName == "" {
		return nil, fmt.Errorf("%w: a CA needs a non-empty common name", ErrInvalidOptions)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	key, err := GenerateKey(kt)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	var signer *x509.Certificate
	var signerKey crypto.Signer
	if parent != nil {
		tmpl.MaxPathLen, tmpl.MaxPathLenZero = 0, true
		if tmpl.NotAfter.After(parent.Cert.NotAfter) {
			tmpl.NotAfter = parent.Cert.NotAfter
		}
		signer, signerKey = parent.Cert, parent.Key
	}
	p, err := create(tmpl, key, signer, signerKey)
	if err != nil {
		return nil, err
	}
	return (*CA)(p), nil
}

// LoadCA parses a CA certificate and its private key from PEM (the key may be
// PKCS#8, PKCS#1 or SEC 1, unencrypted). It fails when the certificate is not a
// CA or the key does not match it; errors never include key material.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: CA certificate is not a PEM \"CERTIFICATE\" block", ErrInvalidOptions)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pgsecure/certgen: cannot parse CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%w: certificate %q is not a CA (basicConstraints CA:FALSE); pass the CA certificate",
			ErrInvalidOptions, cert.Subject.CommonName)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%w: the private key does not belong to CA certificate %q", ErrInvalidOptions, cert.Subject.CommonName)
	}
	return &CA{Cert: cert, Key: key, CertPEM: EncodeCertPEM(cert.Raw), KeyPEM: keyPEM}, nil
}

// ParseKeyPEM parses the first PEM block of keyPEM as an unencrypted PKCS#8,
// PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY") private key.
func ParseKeyPEM(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, fmt.Errorf("%w: private key is not PEM encoded", ErrInvalidOptions)
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: unsupported private key PEM type %q; use an unencrypted PKCS#8 key", ErrInvalidOptions, block.Type)
	}
	if err != nil {
		// The parse error describes the structure, never the key bytes.
		return nil, fmt.Errorf("pgsecure/certgen: cannot parse %s: %w", block.Type, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: private key of type %T cannot sign", ErrInvalidOptions, k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
