package pgsecure

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgsecure/pgsecure/internal/x509check"
)

// certificateError turns an x509check failure into the public
// *CertificateError for host; other errors (and nil) pass unchanged.
func certificateError(host string, err error) error {
	var xe *x509check.Error
	if !errors.As(err, &xe) {
		return err
	}
	return &CertificateError{Host: host, Subject: xe.Subject, Names: xe.Names, Problem: xe.Problem, Fix: xe.Fix, Err: xe.Err}
}

// libpqLookup resolves the IPv4 spellings libpq's getaddrinfo reads without
// DNS ("192.000.002.001", "127.1", "0x7f.0.0.1": see
// x509check.NumericIPv4) to their address, as libpq dials them; every other
// host goes to next. Go's resolver would send these names to DNS and fail
// with "no such host". The certificate is still checked against the host as
// written (x509check.MatchHostname reads it as the same address).
func libpqLookup(next pgconn.LookupFunc) pgconn.LookupFunc {
	return func(ctx context.Context, host string) ([]string, error) {
		if a, ok := x509check.NumericIPv4(host); ok {
			return []string{a.String()}, nil
		}
		return next(ctx, host)
	}
}
