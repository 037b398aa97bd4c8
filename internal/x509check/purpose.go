package x509check

import (
	"crypto/x509"
	"fmt"
	"slices"
)

// libpqChainRules applies, to chains crypto/x509 verified, the rules of
// OpenSSL's verification that crypto/x509 does not have: StoreContinuity,
// CheckServerPurpose and CheckCommonNameConstraints. Each keeps the chains
// that pass; the first rule no chain passes is the refusal.
func libpqChainRules(chains [][]*x509.Certificate, roots Roots) ([][]*x509.Certificate, error) {
	chains, err := StoreContinuity(chains, roots)
	if err != nil {
		return nil, err
	}
	if chains, err = CheckServerPurpose(chains); err != nil {
		return nil, err
	}
	return CheckCommonNameConstraints(chains)
}

// CheckServerPurpose keeps the chains whose certificates, the trust anchor
// included, pass OpenSSL's "SSL server" purpose as far as the extended key
// usage goes (xku_reject in v3_purp.c): a certificate whose
// extendedKeyUsage extension does not list serverAuth is refused, even when
// it lists anyExtendedKeyUsage, which crypto/x509 accepts.
func CheckServerPurpose(chains [][]*x509.Certificate) ([][]*x509.Certificate, error) {
	var kept [][]*x509.Certificate
	var bad *x509.Certificate
	for _, chain := range chains {
		ok := true
		for _, c := range chain {
			if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
				continue
			}
			if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
				ok = false
				if bad == nil {
					bad = c
				}
			}
		}
		if ok {
			kept = append(kept, chain)
		}
	}
	if len(kept) > 0 || len(chains) == 0 {
		return kept, nil
	}
	leaf := chains[0][0]
	e := &Error{Subject: leaf.Subject.String(), Names: leafNames(leaf)}
	if bad == leaf {
		e.Problem = "it is not valid for TLS server authentication: its extended key usage does not list serverAuth " +
			"(libpq does not accept anyExtendedKeyUsage in its place)"
		e.Fix = "reissue it with extendedKeyUsage=serverAuth"
	} else {
		e.Problem = fmt.Sprintf("the CA %q in its chain is not valid for TLS server authentication: its extended key usage does not list serverAuth "+
			"(libpq does not accept anyExtendedKeyUsage in its place)", bad.Subject.String())
		e.Fix = "reissue that CA certificate with serverAuth in its extendedKeyUsage, or without the extension"
	}
	return nil, e
}
