package tlspolicy

import (
	"errors"

	"github.com/pgsecure/pgsecure/verify"

	"github.com/pgsecure/pgsecure/internal/x509check"
)

// certificateError turns an x509check failure into the public
// *CertificateError for host; other errors (and nil) pass unchanged.
func certificateError(host string, err error) error {
	var xe *x509check.Error
	if !errors.As(err, &xe) {
		return err
	}
	return &verify.CertificateError{Host: host, Subject: xe.Subject, Names: xe.Names, Problem: xe.Problem, Fix: xe.Fix, Err: xe.Err}
}
