package x509check

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgsecure/pgsecure/internal/shared"
)

// Roots is the set of CA certificates a server's chain must lead to.
// NewRoots builds it from the certificates of an sslrootcert file.
type Roots struct {
	// Pool holds the trust anchors.
	Pool *x509.CertPool
	// Intermediates, when set, holds pinned certificates that are not trust
	// anchors (not self-signed): they serve to build the path from the
	// server's certificate to an anchor, as if the server had sent them.
	Intermediates *x509.CertPool
	// Subjects name the pinned CAs in error messages.
	Subjects []string
	// Setting names, in error messages, the setting the pinned CAs came
	// from ("RootCAFile", "PGSSLROOTCERT", ...); "" names sslrootcert.
	Setting string
	// pinned holds the DER of every certificate NewRoots was given, certs
	// the certificates.
	pinned map[string]bool
	certs  []*x509.Certificate
}

// VerifyChain verifies the chain a server presented (leaf first) against
// roots at time now: signatures, validity periods, CA constraints and the
// serverAuth extended key usage, with crypto/x509. It then applies libpq's
// trust-anchor rule (OpenSSL without X509_V_FLAG_PARTIAL_CHAIN): a chain is
// trusted only when it ends in a self-signed certificate of roots, so an
// intermediate CA trusted alone is refused, as psql refuses it. Pinned
// certificates in roots.Intermediates (see NewRoots) help build the path.
// The chain's DNS name constraints also apply to a host-like Common Name
// when the leaf has no DNS subjectAltName (CheckCommonNameConstraints).
//
// It returns the verified chains, each ending in its self-signed anchor,
// or an *Error that explains the failure and names the fix. A nil
// roots.Pool is refused, never read as "the system roots".
func VerifyChain(presented []*x509.Certificate, roots Roots, now time.Time) ([][]*x509.Certificate, error) {
	if len(presented) == 0 {
		return nil, &Error{Problem: "the server presented no certificate"}
	}
	if roots.Pool == nil { // crypto/x509 would use the system roots
		return nil, &Error{Problem: "no CA to verify it against",
			Fix: "pin the CA that issued the server certificate with " + roots.settingFix()}
	}
	leaf := presented[0]
	chains, err := verifyServer(presented, roots.Pool, intermediatesOf(roots), now)
	if err != nil {
		if perr := partialChain(leaf, presented, roots, now, err); perr != nil {
			return nil, perr
		}
		if perr := explainPresented(append(slices.Clone(presented), roots.certs...), err); perr != nil {
			return nil, perr
		}
		return nil, explainChainError(leaf, roots, now, err)
	}
	var anchored [][]*x509.Certificate
	for _, chain := range chains {
		if SelfSigned(chain[len(chain)-1]) {
			anchored = append(anchored, chain)
		}
	}
	if len(anchored) == 0 {
		return nil, partialChainError(leaf, chains[0][len(chains[0])-1], roots)
	}
	return libpqChainRules(anchored, roots)
}

// SelfSigned reports whether c is a trust anchor for OpenSSL's default
// chain building: its issuer is its own subject and, when it carries both
// key identifiers, they are equal (X509_check_issued(c, c)). Like OpenSSL
// by default, it does not check the self-signature.
func SelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	return len(c.AuthorityKeyId) == 0 || len(c.SubjectKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
}

func partialChainError(leaf, anchor *x509.Certificate, roots Roots) error {
	if anchor == leaf {
		return &Error{
			Subject: leaf.Subject.String(),
			Names:   leafNames(leaf),
			Problem: fmt.Sprintf("%s holds the server certificate itself, which is not self-signed (issuer %q); "+
				"libpq trusts a chain only when it ends in a self-signed root", roots.setting(), leaf.Issuer.String()),
			Fix: fmt.Sprintf("put the CA certificate that issued it (subject %q) in %s, with the "+
				"self-signed root above it if that CA is an intermediate; to trust this one server key only, also pin it with "+shared.SPKIPins,
				leaf.Issuer.String(), roots.settingFix()),
		}
	}
	return &Error{
		Subject: leaf.Subject.String(),
		Names:   leafNames(leaf),
		Problem: fmt.Sprintf("%s holds only the intermediate CA %q, not the self-signed root CA it was issued by (%q); "+
			"libpq trusts a chain only when it ends in a self-signed root", roots.setting(), anchor.Subject.String(), anchor.Issuer.String()),
		Fix: fmt.Sprintf("add the root CA certificate (subject %q) to %s; "+
			"keep the intermediate there too, or have the server send it with its certificate", anchor.Issuer.String(), roots.settingFix()),
	}
}

func explainChainError(leaf *x509.Certificate, roots Roots, now time.Time, err error) error {
	e := &Error{Subject: leaf.Subject.String(), Names: leafNames(leaf), Err: err}
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown) && slices.Contains(roots.Subjects, leaf.Issuer.String()):
		e.Problem = fmt.Sprintf("it was issued by a CA named %q, but not by the pinned CA of that name (same name, different key: was the CA regenerated?)",
			leaf.Issuer.String())
		e.Fix = "pin the CA certificate that actually signed the server certificate in " + roots.settingFix() + ", or reissue the server certificate from the pinned CA"
	case errors.As(err, &unknown):
		e.Problem = fmt.Sprintf("it was issued by %q, which does not lead to the pinned CA (%s)",
			leaf.Issuer.String(), strings.Join(roots.Subjects, "; "))
		e.Fix = fmt.Sprintf("set %s to the CA certificate that issued the server certificate (its subject is %q)", roots.settingFix(), leaf.Issuer.String())
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired && now.After(leaf.NotAfter):
		e.Problem = fmt.Sprintf("it expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
		e.Fix = "renew the server certificate (ssl_cert_file) and reload PostgreSQL with SELECT pg_reload_conf()"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired && now.Before(leaf.NotBefore):
		e.Problem = fmt.Sprintf("it is not valid until %s", leaf.NotBefore.UTC().Format(time.RFC3339))
		e.Fix = "check this machine's clock, or wait until the certificate becomes valid"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		explainCAValidity(e, invalid.Cert, now, roots)
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		e.Problem = "it is not valid for TLS server authentication (extended key usage)"
		e.Fix = "reissue it with extendedKeyUsage=serverAuth"
	case errors.As(err, &invalid) && explainInvalid(e, invalid):
	default:
		e.Problem = "its chain does not verify"
		e.Fix = "check that the server sends its intermediate certificates and that " + roots.setting() + " is the issuing CA"
	}
	return e
}

// leafNames lists the leaf's dNSName and iPAddress SANs for error reports.
func leafNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// CheckKeyUsage refuses a leaf whose keyUsage extension, when present,
// allows none of the uses a TLS server key needs.
func CheckKeyUsage(leaf *x509.Certificate) error {
	const tlsUsages = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement
	if leaf.KeyUsage == 0 || leaf.KeyUsage&tlsUsages != 0 {
		return nil
	}
	return &Error{Subject: leaf.Subject.String(), Names: leafNames(leaf),
		Problem: "the certificate's key usage does not allow TLS (needs digitalSignature or keyEncipherment)",
		Fix:     "reissue it with keyUsage=digitalSignature,keyEncipherment"}
}

// setting names the pinned CAs' setting in a problem; settingFix in a fix.
func (r Roots) setting() string {
	if r.Setting != "" {
		return shared.Spell(r.Setting)
	}
	return "sslrootcert"
}

func (r Roots) settingFix() string {
	if r.Setting != "" {
		return shared.Spell(r.Setting)
	}
	return shared.SSLRootCert
}
