package pgsecure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"
)

// roots is the set of CA certificates the server's chain must lead to.
type roots struct {
	pool     *x509.CertPool
	subjects []string // for error messages
}

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
	r := &roots{pool: x509.NewCertPool()}
	for _, c := range certs {
		r.pool.AddCert(c)
		r.subjects = append(r.subjects, c.Subject.String())
	}
	if len(r.subjects) == 0 {
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
	pool, err := x509.SystemCertPool()
	if err != nil {
		return nil, err
	}
	return staticRoots{r: &roots{pool: pool, subjects: []string{"the operating system's trusted CAs"}}}, nil
}

// tlsPolicy builds every tls.Config pgsecure hands to pgx and verifies
// every server certificate.
type tlsPolicy struct {
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
}

// alpnPostgres is the ALPN protocol PostgreSQL 17+ selects for direct TLS.
const alpnPostgres = "postgresql"

// currentClientLeaf is the client certificate now in use, if any.
func (p *tlsPolicy) currentClientLeaf() *x509.Certificate {
	if p.clientCert == nil {
		return nil
	}
	return p.clientCert.current()
}

// configFor returns the TLS configuration for one host.
//
// About InsecureSkipVerify: crypto/tls offers exactly one way to replace its
// built-in host name check, which refuses certificates that name the host
// only in the Common Name (as libpq accepts, and as `openssl req -x509`
// produces): turn the built-in verification off and do the complete
// verification in VerifyConnection. That is what this does.
// verifyConnection performs the full chain verification against the pinned
// roots (validity period and extended key usage included), then libpq's host
// name rules; any failure aborts the handshake before a byte of application
// data (let alone a credential) is sent. VerifyConnection also runs on resumed
// sessions. Every connection additionally re-verifies the chain after the
// handshake (verify.Local), and BeforeConnect refuses a configuration whose
// VerifyConnection is not pgsecure's.
func (p *tlsPolicy) configFor(host string) *tls.Config {
	c := &tls.Config{
		InsecureSkipVerify: true, // verification is done, in full, by VerifyConnection (see above)
		VerifyConnection:   p.verifyConnection(host),
		MinVersion:         p.minVersion,
		MaxVersion:         p.maxVersion,
	}
	if p.sni && net.ParseIP(host) == nil {
		c.ServerName = host
	}
	if p.direct {
		c.NextProtos = []string{alpnPostgres}
	}
	if p.clientCert != nil {
		c.GetClientCertificate = p.clientCert.getClientCertificate
	}
	return c
}

func (p *tlsPolicy) verifyConnection(host string) func(tls.ConnectionState) error {
	return (&hostVerifier{policy: p, host: host}).verifyConnection
}

// hostVerifier binds the policy to one host; its method value is what
// pgsecure installs as tls.Config.VerifyConnection.
type hostVerifier struct {
	policy *tlsPolicy
	host   string
}

func (v *hostVerifier) verifyConnection(cs tls.ConnectionState) error {
	return v.policy.verifyPeer(v.host, cs.PeerCertificates)
}

// verifyPeer is the complete server certificate check.
func (p *tlsPolicy) verifyPeer(host string, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return &CertificateError{Host: host, Problem: "the server presented no certificate"}
	}
	if err := p.verifyChain(chain); err != nil {
		var ce *CertificateError
		if errors.As(err, &ce) {
			ce.Host = host
		}
		return err
	}
	leaf := chain[0]
	if err := matchHostname(leaf, host); err != nil {
		return err
	}
	const tlsUsages = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement
	if leaf.KeyUsage != 0 && leaf.KeyUsage&tlsUsages == 0 {
		return &CertificateError{Host: host, Subject: leaf.Subject.String(),
			Problem: "the certificate's key usage does not allow TLS (needs digitalSignature or keyEncipherment)",
			Fix:     "reissue it with keyUsage=digitalSignature,keyEncipherment"}
	}
	return nil
}

// verifyChain verifies the chain against the pinned roots (signatures,
// validity periods, CA constraints and extended key usage serverAuth) and the
// SPKI pins, if any.
func (p *tlsPolicy) verifyChain(chain []*x509.Certificate) error {
	chains, err := p.verifyChains(chain)
	if err == nil {
		err = checkPins(chains, p.pins)
	}
	return err
}

// verifyChains is verifyChain returning the verified chains.
func (p *tlsPolicy) verifyChains(chain []*x509.Certificate) ([][]*x509.Certificate, error) {
	leaf := chain[0]
	r := p.roots.current()
	opts := x509.VerifyOptions{
		Roots:         r.pool,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   p.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return nil, p.explainChainError(leaf, r, err)
	}
	return chains, nil
}

func (p *tlsPolicy) explainChainError(leaf *x509.Certificate, r *roots, err error) error {
	e := &CertificateError{Subject: leaf.Subject.String(), Err: err}
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	now := p.now()
	switch {
	case errors.As(err, &unknown) && slices.Contains(r.subjects, leaf.Issuer.String()):
		e.Problem = fmt.Sprintf("it was issued by a CA named %q, but not by the pinned CA of that name (same name, different key: was the CA regenerated?)",
			leaf.Issuer.String())
		e.Fix = "pin the CA certificate that actually signed the server certificate, or reissue the server certificate from the pinned CA"
	case errors.As(err, &unknown):
		e.Problem = fmt.Sprintf("it was issued by %q, which does not lead to the pinned CA (%s)",
			leaf.Issuer.String(), strings.Join(r.subjects, "; "))
		e.Fix = fmt.Sprintf("set sslrootcert (or RootCAFile) to the CA certificate that issued the server certificate (its subject is %q)", leaf.Issuer.String())
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired && now.After(leaf.NotAfter):
		e.Problem = fmt.Sprintf("it expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
		e.Fix = "renew the server certificate (ssl_cert_file) and reload PostgreSQL with SELECT pg_reload_conf()"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired && now.Before(leaf.NotBefore):
		e.Problem = fmt.Sprintf("it is not valid until %s", leaf.NotBefore.UTC().Format(time.RFC3339))
		e.Fix = "check this machine's clock, or wait until the certificate becomes valid"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		e.Problem = "a certificate in its chain is outside its validity period"
		e.Fix = "renew the expired CA or intermediate certificate"
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		e.Problem = "it is not valid for TLS server authentication (extended key usage)"
		e.Fix = "reissue it with extendedKeyUsage=serverAuth"
	default:
		e.Problem = "its chain does not verify"
		e.Fix = "check that the server sends its intermediate certificates and that sslrootcert is the issuing CA"
	}
	return e
}

// parseTLSVersion reads libpq's ssl_min_protocol_version spellings.
func parseTLSVersion(s string) (uint16, bool) {
	switch strings.ToLower(s) {
	case "tlsv1.2":
		return tls.VersionTLS12, true
	case "tlsv1.3":
		return tls.VersionTLS13, true
	}
	return 0, false
}
