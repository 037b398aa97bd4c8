package pgsecure

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"os"
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

// parsePEMCerts returns every CERTIFICATE block of b, in order (blocks of
// other types are skipped).
func parsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		c, rest, err := nextPEMCert(b)
		if err != nil || c == nil {
			return certs, err
		}
		certs = append(certs, c)
		b = rest
	}
}

// maxPEMFile bounds what pgsecure reads from a certificate or key file.
const maxPEMFile = 1 << 20

// readPEMFile reads a certificate or key file: a regular file of at most
// 1 MiB (a device such as /dev/zero or a FIFO would otherwise block or
// exhaust memory). check, when set, inspects the opened file first.
func readPEMFile(path string, check func(fs.FileInfo) error) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than 1 MiB; it is not a certificate or key file", path)
	}
	if check != nil {
		if err := check(fi); err != nil {
			return nil, err
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%s grew beyond 1 MiB while being read", path)
	}
	return b, nil
}
