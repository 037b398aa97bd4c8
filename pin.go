package pgsecure

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// SPKIPin returns the public-key pin of the first certificate in certPEM:
// the standard (padded) base64 encoding of the SHA-256 digest of its DER
// SubjectPublicKeyInfo. It is the value PinSPKI expects, the format of HPKP
// and curl's --pinnedpubkey, and the output of
//
//	openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
//
// PEM blocks of other types before the certificate are skipped. The error
// wraps ErrInsecureConfig.
func SPKIPin(certPEM []byte) (string, error) {
	c, _, err := nextPEMCert(certPEM)
	if err != nil {
		return "", &ConfigError{Setting: "SPKIPin", Problem: "cannot read the certificate", Err: err}
	}
	if c == nil {
		return "", configErr("SPKIPin", "", "no PEM \"CERTIFICATE\" block in the input",
			"pass the certificate in PEM form (a DER file can be converted with: openssl x509 -inform der -in FILE -out FILE.pem)")
	}
	return pinOf(c), nil
}

func pinOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// parsePins checks that each pin is the standard base64 encoding of a
// 32-byte SHA-256 digest, as SPKIPin returns. The error wraps
// ErrInsecureConfig and says how to compute a pin.
func parsePins(pins []string) error {
	const how = "compute pins with pgsecure.SPKIPin or: openssl x509 -in CERT -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"
	if len(pins) == 0 {
		return configErr("PinSPKI", "builder", "no pin given", how)
	}
	for _, p := range pins {
		problem := ""
		raw, err := base64.StdEncoding.Strict().DecodeString(p)
		switch {
		case strings.HasPrefix(p, "sha256/"):
			problem = fmt.Sprintf("pin %q carries an HPKP/curl prefix", p)
		case len(p) == 64 && isHex(p):
			problem = fmt.Sprintf("pin %q is hexadecimal; pins are base64", p)
		case err != nil:
			problem = fmt.Sprintf("pin %q is not standard base64", p)
		case len(raw) != sha256.Size:
			problem = fmt.Sprintf("pin %q decodes to %d bytes, not the 32 of a SHA-256 digest", p, len(raw))
		}
		if problem != "" {
			return configErr("PinSPKI", "builder", problem, "pass only the base64 digest; "+how)
		}
	}
	return nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkPins accepts the server when a certificate of one of its verified
// chains has a pinned public key. No pins means no pinning.
//
// It takes the chains x509.Certificate.Verify built, not the certificates
// the server sent: a certificate the server merely includes does not count
// unless it is on a verified path from the leaf to a trusted root. (Matching
// the presented list would let anyone holding a certificate from a trusted CA,
// such as a public CA under SystemRoots, pass by appending the pinned
// certificate, which is public.) Any certificate of the path may match: the
// leaf, an intermediate, or the root even when the server does not send it.
// Pinning the CA's key, as HPKP allowed, lets leaf certificates be renewed
// without touching the pins.
//
// A mismatch is a *CertificateError (wrapping ErrUntrustedServer) that lists
// the chain's pins and the pinned ones; the caller fills in Host.
func checkPins(verified [][]*x509.Certificate, pins []string) error {
	if len(pins) == 0 {
		return nil
	}
	var seen []string
	for _, chain := range verified {
		for _, c := range chain {
			pin := pinOf(c)
			if slices.Contains(pins, pin) {
				return nil
			}
			if entry := pin + " (" + c.Subject.String() + ")"; !slices.Contains(seen, entry) {
				seen = append(seen, entry)
			}
		}
	}
	e := &CertificateError{
		Problem: fmt.Sprintf("no public key in its verified chain is pinned (chain: %s; pinned: %s)",
			strings.Join(seen, "; "), strings.Join(pins, "; ")),
		Fix: "if the server's key or CA was replaced on purpose, pin its new key too; " +
			"to rotate without an outage, add the new pin with PinSPKI before rotating keys and remove the old one afterwards",
	}
	if len(verified) > 0 && len(verified[0]) > 0 {
		leaf := verified[0][0]
		e.Subject = leaf.Subject.String()
		e.Names = leafNames(leaf)
	}
	return e
}

func leafNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
