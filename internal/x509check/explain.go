package x509check

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"
)

// explainCAValidity explains a CA certificate of the chain outside its
// validity period (crypto/x509 names it in CertificateInvalidError.Cert).
func explainCAValidity(e *Error, ca *x509.Certificate, now time.Time, roots Roots) {
	if ca == nil {
		e.Problem = "a certificate in its chain is outside its validity period"
		e.Fix = "renew the expired CA or intermediate certificate"
		return
	}
	if now.Before(ca.NotBefore) {
		e.Problem = fmt.Sprintf("the CA certificate %q in its chain is not valid until %s", ca.Subject.String(), ca.NotBefore.UTC().Format(time.RFC3339))
		e.Fix = "check this machine's clock, or wait until that CA certificate becomes valid"
		return
	}
	e.Problem = fmt.Sprintf("the CA certificate %q in its chain expired on %s", ca.Subject.String(), ca.NotAfter.UTC().Format(time.RFC3339))
	e.Fix = fmt.Sprintf("renew the CA certificate %q and put the new one where the old one is (%s, or the server's ssl_cert_file after its certificate)",
		ca.Subject.String(), roots.setting())
}

// explainInvalid fills e for the CA-side reasons crypto/x509 gives and
// reports whether it knew the reason.
func explainInvalid(e *Error, invalid x509.CertificateInvalidError) bool {
	name := "a CA certificate"
	if invalid.Cert != nil {
		name = fmt.Sprintf("the certificate %q", invalid.Cert.Subject.String())
	}
	switch invalid.Reason {
	case x509.NotAuthorizedToSign:
		e.Problem = name + " in its chain signed a certificate but is not a CA (basicConstraints CA:TRUE and keyUsage keyCertSign are required)"
		e.Fix = "reissue the server certificate from a real CA certificate, or reissue that CA with basicConstraints=critical,CA:TRUE and keyUsage=keyCertSign"
	case x509.TooManyIntermediates:
		e.Problem = name + "'s path length constraint (pathlen) does not allow the CAs below it"
		e.Fix = "issue the server certificate from a CA the path length allows, or reissue that CA with a larger pathlen"
	case x509.CANotAuthorizedForThisName, x509.UnconstrainedName:
		e.Problem = "a name in it is outside the name constraints of a CA in its chain (" + invalid.Detail + ")"
		e.Fix = "reissue the server certificate with subjectAltName entries the CA is permitted to issue"
	case x509.CANotAuthorizedForExtKeyUsage:
		e.Problem = name + " in its chain is not allowed to issue certificates for TLS server authentication (extended key usage)"
		e.Fix = "issue the server certificate from a CA whose extendedKeyUsage includes serverAuth, or that has none"
	case x509.NameConstraintsWithoutSANs:
		e.Problem = "it has no subjectAltName although a CA in its chain has name constraints"
		e.Fix = "reissue the server certificate with a subjectAltName the CA is permitted to issue"
	default:
		return false
	}
	return true
}

// explainPresented explains failures crypto/x509 blames on the wrong
// certificate, by looking at the chain the server sent: a CA certificate
// that is not a CA (reported as an unknown authority) and a CA whose
// extended key usage excludes serverAuth (reported as the leaf's usage).
// presented may be followed by the pinned certificates. It returns nil when
// neither applies.
func explainPresented(presented []*x509.Certificate, err error) error {
	leaf := presented[0]
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		for i, c := range presented[:len(presented)-1] {
			for _, issuer := range presented[i+1:] {
				if !bytes.Equal(issuer.RawSubject, c.RawIssuer) || c.CheckSignatureFrom(issuer) == nil {
					continue
				}
				if issuer.BasicConstraintsValid && issuer.IsCA && (issuer.KeyUsage == 0 || issuer.KeyUsage&x509.KeyUsageCertSign != 0) {
					continue
				}
				return &Error{Subject: leaf.Subject.String(), Names: leafNames(leaf), Err: err,
					Problem: fmt.Sprintf("the certificate %q that issued %q is not a CA (it needs basicConstraints CA:TRUE and, with a keyUsage, keyCertSign)",
						issuer.Subject.String(), c.Subject.String()),
					Fix: "issue the server certificate from a CA certificate, or reissue that certificate with basicConstraints=critical,CA:TRUE and keyUsage=keyCertSign"}
			}
		}
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage && allowsServerAuth(leaf):
		for _, c := range presented[1:] {
			if !allowsServerAuth(c) {
				return &Error{Subject: leaf.Subject.String(), Names: leafNames(leaf), Err: err,
					Problem: fmt.Sprintf("the CA %q in its chain may not issue certificates for TLS server authentication (its extendedKeyUsage lacks serverAuth)",
						c.Subject.String()),
					Fix: "issue the server certificate from a CA whose extendedKeyUsage includes serverAuth, or that has none"}
			}
		}
	}
	return nil
}

func allowsServerAuth(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}
