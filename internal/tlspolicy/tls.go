package tlspolicy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/x509check"
)

// roots is the set of CA certificates the server's chain must lead to.
type roots = x509check.Roots

// rootSource yields the current pinned roots (a file is re-read when it
// changes, so a renewed CA bundle is used by the next new connection).
type rootSource interface {
	current() *roots
}

type staticRoots struct{ r *roots }

func (s staticRoots) current() *roots { return s.r }

type fileRoots struct{ rel *reloading[*roots] }

func (f *fileRoots) current() *roots { return f.rel.get() }

func parseRoots(pemBytes []byte, origin string) (*roots, error) {
	certs, err := parsePEMCerts(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", origin, err)
	}
	// Self-signed certificates are anchors, the others intermediates, as
	// libpq (OpenSSL) uses the file; a reloaded file is parsed here too.
	r := new(roots)
	*r = x509check.NewRoots(certs)
	if len(r.Subjects) == 0 {
		return nil, fmt.Errorf("%s contains no PEM \"CERTIFICATE\" block (a DER file can be converted with: openssl x509 -inform der -in FILE -out FILE.pem)", origin)
	}
	return r, nil
}

func loadRootFile(path string) (*roots, error) {
	b, err := readPEMFile(path, nil)
	if err != nil {
		return nil, err
	}
	return parseRoots(b, path)
}

func newFileRoots(path string, logger func() *slog.Logger) (*fileRoots, error) {
	rel, err := newReloading("root certificate file "+path, []string{path}, func() (*roots, error) { return loadRootFile(path) }, logger)
	if err != nil {
		return nil, err
	}
	return &fileRoots{rel: rel}, nil
}

func systemRoots() (rootSource, error) {
	if r, ok := systemStoreRoots(); ok {
		return staticRoots{r: r}, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		return nil, err
	}
	return staticRoots{r: &roots{Pool: pool, Subjects: []string{"the operating system's trusted CAs"}}}, nil
}

// Policy builds every tls.Config pgsecure hands to pgx and verifies
// every server certificate.
type Policy struct {
	roots      rootSource
	minVersion uint16
	maxVersion uint16
	sni        bool
	direct     bool // offer ALPN "postgresql" (direct TLS negotiation)
	now        func() time.Time

	// clientCert, when set, supplies the client certificate per handshake.
	clientCert interface {
		getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error)
		current() *x509.Certificate
	}
	// pins, when set, are SPKI pins one certificate of the chain must match.
	pins []string
	// rootsFrom names the setting the pinned roots came from, as the user
	// wrote it ("RootCAFile", "PGSSLROOTCERT", "sslrootcert"), for the fix
	// in a refusal.
	rootsFrom string
	// crls, when set, are the revocation lists every chain is checked
	// against (sslcrl, sslcrldir, CRLFiles, CRLDir).
	crls *crlSource
	// sessions is carried by every TLS configuration the policy builds: it
	// marks them as pgsecure's (see Owns).
	sessions tls.ClientSessionCache
}

// ConfigFor, VerifyPeer and ClientLeaf make the policy the pipeline's
// connect.TLS.

// Owns reports whether tc is one of the configurations ConfigFor built (a
// per-connection copy that still carries pgsecure's verification).
func (p *Policy) Owns(tc *tls.Config) bool { return tc != nil && tc.ClientSessionCache == p.sessions }

// MinVersion and MaxVersion are the TLS versions allowed (0: no maximum).
func (p *Policy) MinVersion() uint16 { return p.minVersion }
func (p *Policy) MaxVersion() uint16 { return p.maxVersion }

// Direct reports direct TLS negotiation (sslnegotiation=direct).
func (p *Policy) Direct() bool { return p.direct }

// ClientCertificate reports whether a client certificate is presented.
func (p *Policy) ClientCertificate() bool { return p.clientCert != nil }

// alpnPostgres is the ALPN protocol PostgreSQL 17+ selects for direct TLS.
const alpnPostgres = "postgresql"

// ClientLeaf is the client certificate currently presented, if any.
func (p *Policy) ClientLeaf() *x509.Certificate {
	if p.clientCert == nil {
		return nil
	}
	return p.clientCert.current()
}

// ConfigFor is the TLS configuration for one host, marked as the policy's
// (Owns).
//
// About InsecureSkipVerify: crypto/tls offers exactly one way to replace its
// built-in host name check, which refuses certificates that name the host
// only in the Common Name (as libpq accepts, and as `openssl req -x509`
// produces): turn the built-in verification off and do the complete
// verification in VerifyConnection, which is what this does: VerifyPeer for
// the host, the chain against the pinned roots (validity period and extended
// key usage included), then libpq's host name rules; any failure aborts the
// handshake before a byte of application data (let alone a credential) is
// sent. VerifyConnection also runs on resumed sessions. Every connection
// additionally re-verifies the chain after the handshake (the pipeline's
// local stage), and the pool's BeforeConnect refuses a configuration the
// policy does not own.
func (p *Policy) ConfigFor(host string) *tls.Config {
	c := &tls.Config{
		InsecureSkipVerify: true, // verification is done, in full, by VerifyConnection (see above)
		VerifyConnection:   func(cs tls.ConnectionState) error { return p.VerifyPeer(host, cs.PeerCertificates) },
		MinVersion:         p.minVersion,
		MaxVersion:         p.maxVersion,
		ClientSessionCache: p.sessions,
	}
	if p.sni && x509check.UseSNI(host) { // libpq's rule: no SNI for address-like hosts
		c.ServerName = host
	}
	if p.direct {
		c.NextProtos = []string{alpnPostgres}
	}
	c.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		connect.CertificateRequested(cri.Context()) // a later 28000 then says which fix applies
		if p.clientCert == nil {
			return &tls.Certificate{}, nil // none configured: an empty Certificate message, as without the callback
		}
		return p.clientCert.getClientCertificate(cri)
	}
	return c
}

// VerifyPeer is the complete server certificate check: the chain and pins
// (checkChain), libpq's host-name rules and the leaf's key usage. A failure
// is a *CertificateError for host.
func (p *Policy) VerifyPeer(host string, chain []*x509.Certificate) error {
	err := p.checkChain(chain)
	if err == nil {
		err = x509check.MatchHostname(chain[0], host)
	}
	if err == nil {
		err = x509check.CheckKeyUsage(chain[0])
	}
	return certificateError(host, err)
}

func (p *Policy) checkChain(chain []*x509.Certificate) error {
	now := p.now()
	roots := *p.roots.current()
	roots.Setting = p.rootsFrom // refusals name the setting the roots came from
	chains, err := x509check.VerifyChain(chain, roots, now)
	if err == nil && p.crls != nil {
		err = p.crls.check(chains, now) // sslcrl / sslcrldir: see crl.go
	}
	if err == nil {
		err = x509check.CheckPins(chains, p.pins)
	}
	return err
}
