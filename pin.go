package pgsecure

import (
	"github.com/pgsecure/pgsecure/internal/tlspolicy"
)

// SPKIPin returns the public-key pin of the first certificate in certPEM:
// the standard (padded) base64 encoding of the SHA-256 digest of its DER
// SubjectPublicKeyInfo. It is the value SPKIPins expects, the format of HPKP
// and curl's --pinnedpubkey, and the output of
//
//	openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
//
// PEM blocks of other types before the certificate are skipped. The error
// wraps ErrInsecureConfig.
func SPKIPin(certPEM []byte) (string, error) { return tlspolicy.SPKIPin(certPEM) }
