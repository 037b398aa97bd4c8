package pgsecure

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// nextPEMCert returns the next CERTIFICATE block's certificate and the rest,
// or (nil, nil, nil) when no block is left. Blocks of other types are
// skipped; a CERTIFICATE block that does not parse is an error.
func nextPEMCert(b []byte) (*x509.Certificate, []byte, error) {
	for {
		block, rest := pem.Decode(b)
		if block == nil {
			return nil, nil, nil
		}
		b = rest
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("a CERTIFICATE block does not parse: %w", err)
		}
		return c, rest, nil
	}
}
