package tlspolicy

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/pgsecure/pgsecure/internal/x509check"
)

// Where crypto/x509 looks for the system's CA certificates on Linux (its
// root_linux.go), in order: the first existing file, then every directory.
var (
	systemCertFiles = []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	}
	systemCertDirs = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}
)

// systemStoreRoots reads the system's CA certificates from the files
// crypto/x509 reads on Linux (SSL_CERT_FILE and SSL_CERT_DIR first, as
// OpenSSL's default paths, which libpq's sslrootcert=system loads) and sorts
// them as libpq uses a store (x509check.NewRoots): only the self-signed ones
// are trust anchors, the others only complete paths. ok is false where the
// system keeps its CAs elsewhere (macOS, Windows: use x509.SystemCertPool).
func systemStoreRoots() (r *roots, ok bool) {
	if runtime.GOOS != "linux" {
		return nil, false
	}
	files := systemCertFiles
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	dirs := systemCertDirs
	if d, set := os.LookupEnv("SSL_CERT_DIR"); set {
		dirs = filepath.SplitList(d)
	}
	var certs []*x509.Certificate
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			certs = append(certs, pemCertsLenient(b)...)
			break
		}
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(d, e.Name())); err == nil {
				certs = append(certs, pemCertsLenient(b)...)
			}
		}
	}
	if len(certs) == 0 {
		return nil, false
	}
	r = new(roots)
	*r = x509check.NewRoots(certs)
	r.Subjects = []string{"the operating system's trusted CAs"}
	return r, true
}

// pemCertsLenient returns the certificates of b's "CERTIFICATE" PEM blocks
// that parse, skipping the others as x509.CertPool.AppendCertsFromPEM does.
func pemCertsLenient(b []byte) []*x509.Certificate {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return certs
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			certs = append(certs, c)
		}
	}
}
