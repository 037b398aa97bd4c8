package certgen

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"time"
)

// leafValidity is the default lifetime of an issued or self-signed leaf.
const leafValidity = 365 * 24 * time.Hour

// Options describes a leaf certificate. Zero values select the documented
// defaults.
type Options struct {
	// CommonName is the Subject CN. It is never copied into the SANs.
	CommonName string
	// DNSNames and IPs are the Subject Alternative Names, exactly as given
	// (none when both are empty). Wildcards such as "*.example.com" are kept.
	DNSNames []string
	IPs      []net.IP
	// NotBefore and NotAfter bound validity; zero means now-1h and now+1y.
	// Windows in the past or future are allowed (expired or not-yet-valid
	// certificates), an inverted window is an error.
	NotBefore, NotAfter time.Time
	// KeyType of the new key; zero means ECDSAP256.
	KeyType KeyType
	// Client selects ExtKeyUsageClientAuth instead of ExtKeyUsageServerAuth.
	Client bool
	// ExtKeyUsages, when non-nil, replaces the default extended key usage
	// (an empty non-nil slice yields a certificate without the extension).
	ExtKeyUsages []x509.ExtKeyUsage
	// SerialNumber, when non-nil, is used as is; nil means a random 128-bit
	// positive number.
	SerialNumber *big.Int
}

// Pair is a leaf certificate and its private key. CertPEM holds only the leaf;
// KeyPEM is PKCS#8.
type Pair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// Issue creates a new key and a leaf certificate for it signed by ca. The
// Subject CN is o.CommonName and the SANs are exactly o.DNSNames and o.IPs.
// The leaf is not a CA (basicConstraints CA:FALSE).
func (ca *CA) Issue(o Options) (*Pair, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, fmt.Errorf("%w: Issue needs a CA with a certificate and a key", ErrInvalidOptions)
	}
	key, tmpl, err := leafTemplate(o)
	if err != nil {
		return nil, err
	}
	return create(tmpl, key, ca.Cert, ca.Key)
}

// SelfSigned creates a self-signed leaf that serves as its own root, like
// `openssl req -x509` does: IsCA is true, key usage includes CertSign, and the
// SANs are exactly as given (possibly none, in which case only the Common Name
// names the host and Go's verify-full hostname check rejects it).
func SelfSigned(o Options) (*Pair, error) {
	key, tmpl, err := leafTemplate(o)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	return create(tmpl, key, nil, nil)
}

// leafTemplate validates o, generates the leaf's key and returns both.
func leafTemplate(o Options) (crypto.Signer, *x509.Certificate, error) {
	now := time.Now()
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = now.Add(-backdate)
	}
	if na.IsZero() {
		na = now.Add(leafValidity)
	}
	if !na.After(nb) {
		return nil, nil, fmt.Errorf("%w: NotAfter (%s) must be after NotBefore (%s)",
			ErrInvalidOptions, na.Format(time.RFC3339), nb.Format(time.RFC3339))
	}
	serial := o.SerialNumber
	if serial == nil {
		var err error
		if serial, err = randomSerial(); err != nil {
			return nil, nil, err
		}
	}
	eku := o.ExtKeyUsages
	if eku == nil {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if o.Client {
			eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
	}
	key, err := GenerateKey(o.KeyType)
	if err != nil {
		return nil, nil, err
	}
	return key, &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CommonName},
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		NotBefore:             nb,
		NotAfter:              na,
		BasicConstraintsValid: true,
		KeyUsage:              keyUsage(key),
		ExtKeyUsage:           eku,
	}, nil
}

// create signs tmpl for key with (parent, parentKey), or self-signs when parent
// is nil, and returns the result with both PEM encodings.
func create(tmpl *x509.Certificate, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) (*Pair, error) {
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	cert, certPEM, err := sign(tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return &Pair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// TLSCertificate returns p as a tls.Certificate (leaf only, Leaf set) for a
// tls.Config's Certificates.
func (p *Pair) TLSCertificate() (tls.Certificate, error) {
	return p.TLSCertificateWithChain()
}

// TLSCertificateWithChain is TLSCertificate with the given intermediates
// appended to the chain sent to peers, in order.
func (p *Pair) TLSCertificateWithChain(intermediates ...*CA) (tls.Certificate, error) {
	if p == nil || p.Cert == nil || p.Key == nil {
		return tls.Certificate{}, fmt.Errorf("%w: pair has no certificate or key", ErrInvalidOptions)
	}
	chain := [][]byte{p.Cert.Raw}
	for _, ca := range intermediates {
		chain = append(chain, ca.Cert.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: p.Key, Leaf: p.Cert}, nil
}

// ChainPEM returns the leaf PEM followed by each intermediate's PEM, in order:
// the content of a server certificate file that sends its chain.
func (p *Pair) ChainPEM(intermediates ...*CA) []byte {
	out := append([]byte(nil), p.CertPEM...)
	for _, ca := range intermediates {
		out = append(out, ca.CertPEM...)
	}
	return out
}

// SPKIPin returns base64(SHA-256(cert.RawSubjectPublicKeyInfo)), standard
// encoding with padding: the form used for public key pinning.
func SPKIPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
