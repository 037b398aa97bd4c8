package x509check

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/pgsecure/pgsecure/internal/shared"
)

// SPKIPin is the public-key pin of c: the standard (padded) base64 encoding
// of the SHA-256 digest of its DER SubjectPublicKeyInfo, the format of HPKP
// and curl's --pinnedpubkey, and the output of
//
//	openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
func SPKIPin(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// CheckPins accepts the server when a certificate of one of its verified
// chains has a pinned public key. No pins means no pinning.
//
// It takes the chains VerifyChain returned, not the certificates the server
// sent: a certificate the server merely includes does not count unless it
// is on a verified path from the leaf to a trusted root. (Matching the
// presented list would let anyone holding a certificate from a trusted CA,
// such as a public CA under the system roots, pass by appending the pinned
// certificate, which is public.) Any certificate of the path may match: the
// leaf, an intermediate, or the root even when the server does not send it.
// Pinning the CA's key, as HPKP allowed, lets leaf certificates be renewed
// without touching the pins.
//
// A mismatch is an *Error that lists the chain's pins and the pinned ones.
func CheckPins(verified [][]*x509.Certificate, pins []string) error {
	if len(pins) == 0 {
		return nil
	}
	var seen []string
	for _, chain := range verified {
		for _, c := range chain {
			pin := SPKIPin(c)
			if slices.Contains(pins, pin) {
				return nil
			}
			if entry := pin + " (" + c.Subject.String() + ")"; !slices.Contains(seen, entry) {
				seen = append(seen, entry)
			}
		}
	}
	e := &Error{
		Problem: fmt.Sprintf("no public key in its verified chain is pinned (chain: %s; pinned: %s)",
			strings.Join(seen, "; "), strings.Join(pins, "; ")),
		Fix: "if the server's key or CA was replaced on purpose, pin its new key too; " +
			"to rotate without an outage, add the new pin with " + shared.SPKIPins + " before rotating keys and remove the old one afterwards",
	}
	if len(verified) > 0 && len(verified[0]) > 0 {
		leaf := verified[0][0]
		e.Subject = leaf.Subject.String()
		e.Names = leafNames(leaf)
	}
	return e
}
