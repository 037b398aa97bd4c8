package tlspolicy

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"

	"github.com/pgsecure/pgsecure/internal/files"
)

// NextPEMCert returns the next CERTIFICATE block's certificate and the rest,
// or (nil, nil, nil) when no block is left. Blocks of other types are
// skipped; a CERTIFICATE block that does not parse is an error.
func NextPEMCert(b []byte) (*x509.Certificate, []byte, error) {
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

// parsePEMCerts returns every CERTIFICATE block of b, in order (blocks of
// other types are skipped).
func parsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		c, rest, err := NextPEMCert(b)
		if err != nil || c == nil {
			return certs, err
		}
		certs = append(certs, c)
		b = rest
	}
}

// readPEMFile reads a certificate or key file: a regular file of at most
// 1 MiB (see files.Read). check, when set, inspects the opened file first.
func readPEMFile(path string, check func(fs.FileInfo) error) ([]byte, error) {
	return files.Read(path, check)
}
