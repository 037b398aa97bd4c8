package pgsecure

import (
	"crypto/x509"
	"errors"

	"github.com/pgsecure/pgsecure/internal/x509check"
)

// matchHostname checks a server certificate against the host the client
// connected to, with libpq's sslmode=verify-full rules (see
// x509check.MatchHostname: SAN before Common Name, ASCII-only case folding,
// inet_aton IPv4 spellings). It returns nil on a match, otherwise a
// *CertificateError naming what the certificate covers.
func matchHostname(cert *x509.Certificate, host string) error {
	return certificateError(host, x509check.MatchHostname(cert, host))
}

// certificateError turns an x509check failure into the public
// *CertificateError for host; other errors (and nil) pass unchanged.
func certificateError(host string, err error) error {
	var xe *x509check.Error
	if !errors.As(err, &xe) {
		return err
	}
	return &CertificateError{Host: host, Subject: xe.Subject, Names: xe.Names, Problem: xe.Problem, Fix: xe.Fix, Err: xe.Err}
}
