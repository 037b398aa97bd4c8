package x509check

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"
)

// NewRoots sorts the certificates of an sslrootcert file as OpenSSL's chain
// building without X509_V_FLAG_PARTIAL_CHAIN uses them: the self-signed ones
// (see SelfSigned) are trust anchors (Pool); the others (an intermediate CA,
// a server certificate) only help to build a path to an anchor
// (Intermediates), so a root+intermediate bundle verifies a server that
// sends only its leaf, and an intermediate pinned alone anchors nothing.
// Subjects names every certificate once, in file order.
func NewRoots(certs []*x509.Certificate) Roots {
	r := Roots{Pool: x509.NewCertPool(), Intermediates: x509.NewCertPool(), pinned: map[string]bool{}}
	for _, c := range certs {
		r.pinned[string(c.Raw)] = true
		r.certs = append(r.certs, c)
		if SelfSigned(c) {
			r.Pool.AddCert(c)
		} else {
			r.Intermediates.AddCert(c)
		}
		if !slices.Contains(r.Subjects, c.Subject.String()) {
			r.Subjects = append(r.Subjects, c.Subject.String())
		}
	}
	return r
}

// partialChain explains a chain that found no self-signed anchor although
// the pinned non-self-signed certificates would have ended it (OpenSSL's
// "unable to get issuer certificate" for a partial chain): an intermediate or
// the server certificate pinned without the root above it. It returns nil
// when the pinned intermediates do not explain the failure.
func partialChain(leaf *x509.Certificate, presented []*x509.Certificate, roots Roots, now time.Time, err error) error {
	var unknown x509.UnknownAuthorityError
	if roots.Intermediates == nil || !errors.As(err, &unknown) {
		return nil
	}
	chains, verr := verifyServer(presented, roots.Intermediates, x509.NewCertPool(), now)
	if verr != nil {
		return nil
	}
	return partialChainError(leaf, chains[0][len(chains[0])-1], roots)
}

// verifyServer verifies the server's leaf for server authentication
// against anchors, building the path through intermediates and the
// certificates the server sent after its leaf (added to intermediates).
func verifyServer(presented []*x509.Certificate, anchors, intermediates *x509.CertPool, now time.Time) ([][]*x509.Certificate, error) {
	for _, c := range presented[1:] {
		intermediates.AddCert(c)
	}
	return presented[0].Verify(x509.VerifyOptions{
		Roots:         anchors,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// intermediatesOf returns a fresh pool with the pinned non-anchor
// certificates of roots, to which the server's own are added.
func intermediatesOf(roots Roots) *x509.CertPool {
	if roots.Intermediates == nil {
		return x509.NewCertPool()
	}
	return roots.Intermediates.Clone()
}

// StoreContinuity keeps the chains OpenSSL's chain building could have
// built from the same certificates. OpenSSL looks for each issuer in the
// trusted store first (X509_V_FLAG_TRUSTED_FIRST) and, once the path has
// reached a certificate of the store, completes it from the store only. So
// with sslrootcert holding an intermediate and the root but not the
// intermediate between them, a chain through the pinned intermediate fails
// even if the server sends the missing one; crypto/x509 would accept it.
// Roots not made by NewRoots keep every chain.
func StoreContinuity(chains [][]*x509.Certificate, roots Roots) ([][]*x509.Certificate, error) {
	if roots.pinned == nil || len(chains) == 0 {
		return chains, nil
	}
	var kept [][]*x509.Certificate
	var gap [2]*x509.Certificate
	for _, chain := range chains {
		ok := true
		inStore := false
		for i, c := range chain[1:] {
			switch {
			case roots.pinned[string(c.Raw)]:
				inStore = true
			case inStore:
				ok = false
				if gap[0] == nil {
					gap = [2]*x509.Certificate{chain[i], c}
				}
			}
		}
		if ok {
			kept = append(kept, chain)
		}
	}
	if len(kept) > 0 {
		return kept, nil
	}
	leaf := chains[0][0]
	return nil, &Error{Subject: leaf.Subject.String(), Names: leafNames(leaf),
		Problem: fmt.Sprintf("%[3]s holds the CA %[1]q but not its issuer %[2]q; libpq completes a chain from %[3]s alone once it reaches a certificate of it, "+
			"even when the server sends the missing CA", gap[0].Subject.String(), gap[1].Subject.String(), roots.setting()),
		Fix: fmt.Sprintf("add the CA certificate %q to %s, or remove %q from it", gap[1].Subject.String(), roots.settingFix(), gap[0].Subject.String())}
}
