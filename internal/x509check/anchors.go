package x509check

import (
	"crypto/x509"
	"errors"
	"time"
)

// NewRoots sorts the certificates of an sslrootcert file as OpenSSL's chain
// building without X509_V_FLAG_PARTIAL_CHAIN uses them: the self-signed ones
// (see SelfSigned) are trust anchors (Pool); the others (an intermediate CA,
// a server certificate) only help to build a path to an anchor
// (Intermediates), so a root+intermediate bundle verifies a server that
// sends only its leaf, and an intermediate pinned alone anchors nothing.
// Subjects names every certificate, in file order.
func NewRoots(certs []*x509.Certificate) Roots {
	r := Roots{Pool: x509.NewCertPool(), Intermediates: x509.NewCertPool()}
	for _, c := range certs {
		if SelfSigned(c) {
			r.Pool.AddCert(c)
		} else {
			r.Intermediates.AddCert(c)
		}
		r.Subjects = append(r.Subjects, c.Subject.String())
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
	opts := x509.VerifyOptions{
		Roots:         roots.Intermediates,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, c := range presented[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, verr := leaf.Verify(opts)
	if verr != nil {
		return nil
	}
	return partialChainError(leaf, chains[0][len(chains[0])-1])
}

// intermediatesOf returns a fresh pool with the pinned non-anchor
// certificates of roots, to which the server's own are added.
func intermediatesOf(roots Roots) *x509.CertPool {
	if roots.Intermediates == nil {
		return x509.NewCertPool()
	}
	return roots.Intermediates.Clone()
}
