package testutil

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/pgsecure/pgsecure/internal/certgen"
)

// PKI is a throwaway certificate authority whose files live in a test's
// temporary directory. CAFile (Dir/ca.crt) holds the CA certificate PEM.
type PKI struct {
	CA     *certgen.CA
	Dir    string
	CAFile string

	seq atomic.Int64
}

// NewPKI creates an ECDSA P-256 CA in t.TempDir().
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca, err := certgen.NewCA("pgsecure test CA", certgen.ECDSAP256)
	if err != nil {
		t.Fatalf("%v", err)
	}
	dir := t.TempDir()
	return &PKI{CA: ca, Dir: dir, CAFile: WritePEM(t, dir, "ca.crt", ca.CertPEM)}
}

// LocalServerOptions names this machine's loopback server: CN and DNS SAN
// "localhost", IP SANs 127.0.0.1 and ::1.
func LocalServerOptions() certgen.Options {
	return certgen.Options{
		CommonName: "localhost",
		DNSNames:   []string{"localhost"},
		IPs:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
}

// Server issues a server certificate for o (o.Client is ignored) and writes
// it and its key (0600) to new files in p.Dir.
func (p *PKI) Server(t testing.TB, o certgen.Options) (certFile, keyFile string, pair *certgen.Pair) {
	t.Helper()
	o.Client = false
	return p.issue(t, "server", o)
}

// Client issues a client certificate with CN=role and ExtKeyUsageClientAuth
// and writes it and its key (0600) to new files in p.Dir.
func (p *PKI) Client(t testing.TB, role string) (certFile, keyFile string, pair *certgen.Pair) {
	t.Helper()
	return p.issue(t, "client-"+role, certgen.Options{CommonName: role, Client: true})
}

func (p *PKI) issue(t testing.TB, prefix string, o certgen.Options) (certFile, keyFile string, pair *certgen.Pair) {
	t.Helper()
	pair, err := p.CA.Issue(o)
	if err != nil {
		t.Fatalf("%v", err)
	}
	name := fmt.Sprintf("%s-%d", prefix, p.seq.Add(1))
	certFile = WritePEM(t, p.Dir, name+".crt", pair.CertPEM)
	keyFile = WritePEM(t, p.Dir, name+".key", pair.KeyPEM)
	return certFile, keyFile, pair
}

// StartPostgres starts a TLS server whose certificate, issued by p for
// LocalServerOptions, is used unless o already carries one.
func (p *PKI) StartPostgres(t testing.TB, o PGOptions) *Postgres {
	t.Helper()
	if len(o.ServerCertPEM) == 0 && !o.SSLOff {
		pair, err := p.CA.Issue(LocalServerOptions())
		if err != nil {
			t.Fatalf("%v", err)
		}
		o.ServerCertPEM, o.ServerKeyPEM = pair.CertPEM, pair.KeyPEM
	}
	return StartPostgres(t, o)
}

// WritePEM writes pem to dir/name with mode 0600 and returns the path.
func WritePEM(t testing.TB, dir, name string, pem []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatalf("pgsecure/testutil: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatalf("pgsecure/testutil: %v", err)
	}
	return path
}
