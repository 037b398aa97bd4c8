// Package certgen creates X.509 certificate authorities and leaf certificates
// for PostgreSQL servers and clients, and writes them to disk with safe file
// modes.
//
// Every certificate it issues carries its Subject Alternative Names exactly as
// given: certgen never copies the Common Name into a SAN. A server certificate
// without a DNS or IP SAN is therefore rejected by Go's hostname check, just as
// it would be in production.
//
// Private keys are encoded as unencrypted PKCS#8 ("PRIVATE KEY") PEM. No error
// returned by this package contains key material.
package certgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// KeyType names the algorithm and size of a generated private key.
type KeyType string

// Supported key types. The zero KeyType means ECDSAP256 wherever a KeyType is
// optional.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	RSA2048   KeyType = "rsa-2048"
	RSA4096   KeyType = "rsa-4096"
)

// ErrInvalidOptions is wrapped by every error caused by a bad argument (unknown
// key type, inverted validity window, missing CA, bad file name, ...).
var ErrInvalidOptions = errors.New("pgsecure/certgen: invalid options")

// GenerateKey returns a new private key of type kt (ECDSAP256 when kt is empty).
// An unknown kt yields an error wrapping ErrInvalidOptions.
func GenerateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case ECDSAP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	default:
		return nil, fmt.Errorf("%w: unknown key type %q; use %q, %q or %q",
			ErrInvalidOptions, kt, ECDSAP256, RSA2048, RSA4096)
	}
}

// EncodeKeyPEM encodes k as an unencrypted PKCS#8 "PRIVATE KEY" PEM block.
func EncodeKeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pgsecure/certgen: cannot encode private key of type %T as PKCS#8: %w", k, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodeCertPEM encodes a DER certificate as a "CERTIFICATE" PEM block.
func EncodeCertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// randomSerial returns a random serial number in [1, 2^128].
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("pgsecure/certgen: cannot generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// keyUsage returns the leaf key usage appropriate for the key's algorithm:
// RSA keys also get KeyEncipherment (RSA key exchange), ECDSA keys do not.
func keyUsage(k crypto.Signer) x509.KeyUsage {
	if _, ok := k.Public().(*rsa.PublicKey); ok {
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	return x509.KeyUsageDigitalSignature
}

// sign creates the certificate described by tmpl for pub, signed by
// (parent, parentKey), and returns the parsed certificate and its PEM.
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) (*x509.Certificate, []byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pgsecure/certgen: cannot create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pgsecure/certgen: cannot parse created certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return cert, EncodeCertPEM(der), nil
}
