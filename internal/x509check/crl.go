package x509check

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgsecure/pgsecure/internal/shared"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CRL is a certificate revocation list and the file it was read from, with
// what OpenSSL derives from its extensions.
type CRL struct {
	List *x509.RevocationList
	// Source is the file the CRL was read from ("" when unknown).
	Source string

	critical bool // an unhandled critical extension (OpenSSL's EXFLAG_CRITICAL)
	delta    bool // a delta CRL (deltaCRLIndicator)
	idp      *issuingDP
}

// issuingDP is what OpenSSL reads from an issuingDistributionPoint.
type issuingDP struct {
	uris                                             []string // fullName URIs of its distributionPoint
	hasPoint                                         bool
	onlyUser, onlyCA, onlyAttr, indirect, hasReasons bool
	invalid                                          bool // more than one "only" flag (IDP_INVALID)
}

var (
	oidIssuingDP  = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidDeltaCRL   = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidAuthKeyID  = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCertIssuer = asn1.ObjectIdentifier{2, 5, 29, 29}
)

// reasonRemoveFromCRL is the CRLReason removeFromCRL: such an entry does not
// revoke.
const reasonRemoveFromCRL = 8

// ParseCRLs parses every PEM "X509 CRL" block of pemBytes (other blocks,
// such as certificates, are skipped). It fails on a block that does not
// parse and on input that holds no CRL; source names the file in errors.
func ParseCRLs(pemBytes []byte, source string) ([]*CRL, error) {
	var out []*CRL
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		list, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: CRL %d does not parse: %w", source, len(out)+1, err)
		}
		out = append(out, newCRL(list, source))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s contains no PEM \"X509 CRL\" block (a DER CRL can be converted with: openssl crl -inform der -in FILE -out FILE.pem)", source)
	}
	return out, nil
}

func newCRL(list *x509.RevocationList, source string) *CRL {
	c := &CRL{List: list, Source: source}
	for _, e := range list.Extensions {
		switch {
		case e.Id.Equal(oidDeltaCRL):
			c.delta = true
		case e.Id.Equal(oidIssuingDP):
			idp, err := parseIssuingDP(e.Value)
			if err != nil {
				idp = &issuingDP{invalid: true}
			}
			c.idp = idp
		case e.Critical && !e.Id.Equal(oidAuthKeyID):
			c.critical = true
		}
	}
	for _, r := range list.RevokedCertificateEntries {
		for _, e := range r.Extensions {
			if e.Critical && !e.Id.Equal(oidCertIssuer) {
				c.critical = true
			}
		}
	}
	return c
}

// parseIssuingDP reads the issuingDistributionPoint extension (RFC 5280
// 5.2.5) as OpenSSL's setup_idp does.
func parseIssuingDP(der []byte) (*issuingDP, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed issuingDistributionPoint")
	}
	idp := &issuingDP{}
	var dpn cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&dpn, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, errors.New("malformed distributionPoint")
	}
	if present {
		idp.hasPoint = true
		var full cryptobyte.String
		var isFull bool
		if dpn.ReadOptionalASN1(&full, &isFull, cbasn1.Tag(0).Constructed().ContextSpecific()); isFull {
			for !full.Empty() {
				var name cryptobyte.String
				var tag cbasn1.Tag
				if !full.ReadAnyASN1(&name, &tag) {
					return nil, errors.New("malformed fullName")
				}
				if tag == cbasn1.Tag(6).ContextSpecific() {
					idp.uris = append(idp.uris, string(name))
				}
			}
		}
	}
	flag := func(n int) (bool, error) {
		var v cryptobyte.String
		var ok bool
		if !seq.ReadOptionalASN1(&v, &ok, cbasn1.Tag(n).ContextSpecific()) {
			return false, errors.New("malformed flag")
		}
		return ok && len(v) == 1 && v[0] != 0, nil
	}
	var err error
	if idp.onlyUser, err = flag(1); err != nil {
		return nil, err
	}
	if idp.onlyCA, err = flag(2); err != nil {
		return nil, err
	}
	var reasons cryptobyte.String
	if !seq.ReadOptionalASN1(&reasons, &idp.hasReasons, cbasn1.Tag(3).ContextSpecific()) {
		return nil, errors.New("malformed onlySomeReasons")
	}
	if idp.indirect, err = flag(4); err != nil {
		return nil, err
	}
	if idp.onlyAttr, err = flag(5); err != nil {
		return nil, err
	}
	n := 0
	for _, f := range []bool{idp.onlyUser, idp.onlyCA, idp.onlyAttr} {
		if f {
			n++
		}
	}
	idp.invalid = n > 1
	return idp, nil
}

// CRLStore yields the loaded CRLs that may have been issued by the CA whose
// DER-encoded subject is issuer (all of them, or those an `openssl rehash`
// directory files under the name's hash). Extra CRLs do no harm: the check
// selects by name itself.
type CRLStore interface {
	CRLsFor(issuer []byte) []*CRL
}

// CRL scores, as OpenSSL's get_crl_score (crypto/x509/x509_vfy.c).
const (
	scoreNoCritical = 0x100
	scoreScope      = 0x080
	scoreTime       = 0x040
	scoreIssuerName = 0x020
	scoreIssuerCert = 0x018 // includes scoreSamePath
	scoreSamePath   = 0x008
	scoreAKID       = 0x004
)

// CheckRevocation applies libpq's revocation check to a verified chain
// (leaf first, ending in its self-signed anchor): OpenSSL 3.0's
// X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL, without extended CRL
// support or delta CRLs, as libpq sets it. Every certificate of the chain,
// the self-signed root included, needs a CRL of its issuer: the best-scoring
// CRL whose issuer name matches (ties go to the newest thisUpdate), whose
// authority key identifier, if any, matches the issuing CA, and which covers
// the certificate; that CRL must be signed by the CA (whose keyUsage, when
// present, must allow cRLSign), be within thisUpdate..nextUpdate at now,
// carry no critical extension OpenSSL does not process, and not list the
// certificate's serial number (an entry with reason removeFromCRL does not
// count). A failure is an *Error naming the certificate, the CRL and the fix.
func CheckRevocation(chain []*x509.Certificate, store CRLStore, now time.Time) error {
	now = now.Truncate(time.Second) // ASN.1 times have whole seconds
	for depth, cert := range chain {
		if err := checkCertCRL(chain, depth, cert, store, now); err != nil {
			err.Subject, err.Names = chain[0].Subject.String(), leafNames(chain[0])
			return err
		}
	}
	return nil
}

func checkCertCRL(chain []*x509.Certificate, depth int, cert *x509.Certificate, store CRLStore, now time.Time) *Error {
	var best *CRL
	var bestIssuer *x509.Certificate
	bestScore := 0
	for _, c := range store.CRLsFor(cert.RawIssuer) {
		score, issuer := crlScore(chain, depth, cert, c, now)
		if score == 0 || score < bestScore {
			continue
		}
		if score == bestScore && best != nil && !c.List.ThisUpdate.After(best.List.ThisUpdate) {
			continue
		}
		best, bestIssuer, bestScore = c, issuer, score
	}
	what := describe(chain, depth)
	if best == nil {
		return &Error{
			Problem: fmt.Sprintf("no certificate revocation list issued by %q is loaded for %s; with sslcrl or sslcrldir set, "+
				"libpq checks every certificate of the chain, the CAs' own included, against a CRL of its issuer",
				cert.Issuer.String(), what),
			Fix: fmt.Sprintf("add the current CRL of %q to the file of %s or to the directory of %s (then run openssl rehash DIR); "+
				"a CA run with OpenSSL makes it with: openssl ca -gencrl -out FILE", cert.Issuer.String(), shared.SSLCRL, shared.SSLCRLDir),
		}
	}
	return verifyCRL(best, bestIssuer, bestScore, cert, what, now)
}

// crlScore is OpenSSL's get_crl_score for crl and the certificate at depth.
func crlScore(chain []*x509.Certificate, depth int, cert *x509.Certificate, c *CRL, now time.Time) (int, *x509.Certificate) {
	if c.delta || (c.idp != nil && (c.idp.invalid || c.idp.indirect || c.idp.hasReasons)) {
		return 0, nil // delta CRLs, indirect CRLs and reason partitions need flags libpq does not set
	}
	if !NamesEqual(cert.RawIssuer, c.List.RawIssuer) {
		return 0, nil
	}
	score := scoreIssuerName
	if !c.critical {
		score |= scoreNoCritical
	}
	if crlTimeOK(c, now) == "" {
		score |= scoreTime
	}
	// crl_akid_check: the issuing CA is the next certificate of the chain
	// (the root is its own); else another CA higher in the chain.
	idx := depth
	if idx != len(chain)-1 {
		idx++
	}
	var issuer *x509.Certificate
	if akidMatches(chain[idx], c) {
		score |= scoreAKID | scoreIssuerCert
		issuer = chain[idx]
	} else {
		for idx++; idx < len(chain); idx++ {
			if akidMatches(chain[idx], c) {
				score |= scoreAKID | scoreSamePath
				issuer = chain[idx]
				break
			}
		}
	}
	if issuer == nil {
		return 0, nil
	}
	if crlCovers(c, cert) {
		score |= scoreScope
	}
	return score, issuer
}

// akidMatches is OpenSSL's matching_crl_issuer_and_akid: ca's subject is the
// CRL's issuer, and the CRL's authority key identifier, if both it and the
// CA's subject key identifier are present, names the CA's key.
func akidMatches(ca *x509.Certificate, c *CRL) bool {
	if !NamesEqual(ca.RawSubject, c.List.RawIssuer) {
		return false
	}
	return len(c.List.AuthorityKeyId) == 0 || len(ca.SubjectKeyId) == 0 || bytes.Equal(c.List.AuthorityKeyId, ca.SubjectKeyId)
}

// crlCovers is OpenSSL's crl_crldp_check without extended CRL support.
func crlCovers(c *CRL, cert *x509.Certificate) bool {
	idp := c.idp
	if idp == nil {
		return true
	}
	if idp.onlyAttr || (cert.IsCA && idp.onlyUser) || (!cert.IsCA && idp.onlyCA) {
		return false
	}
	if !idp.hasPoint {
		return true
	}
	for _, u := range cert.CRLDistributionPoints {
		if slices.Contains(idp.uris, u) {
			return true
		}
	}
	return false
}

// crlTimeOK returns "" when now is within the CRL's thisUpdate..nextUpdate
// (OpenSSL 3.0's check_crl_time: a CRL without nextUpdate never expires),
// else the problem.
func crlTimeOK(c *CRL, now time.Time) string {
	l := c.List
	if l.ThisUpdate.After(now) {
		return fmt.Sprintf("is not valid until %s (its thisUpdate)", l.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !l.NextUpdate.IsZero() && !l.NextUpdate.After(now) {
		return fmt.Sprintf("expired on %s (its nextUpdate)", l.NextUpdate.UTC().Format(time.RFC3339))
	}
	return ""
}

// verifyCRL is OpenSSL's check_crl and cert_crl for the selected CRL.
func verifyCRL(c *CRL, issuer *x509.Certificate, score int, cert *x509.Certificate, what string, now time.Time) *Error {
	name := DescribeCRL(c)
	switch {
	case issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCRLSign == 0:
		return &Error{Problem: fmt.Sprintf("%s was issued by CA %q, whose keyUsage does not allow signing CRLs (cRLSign)", name, issuer.Subject.String()),
			Fix: "have the CA certificate reissued with keyUsage cRLSign, or remove this CRL"}
	case score&scoreScope == 0:
		return &Error{Problem: fmt.Sprintf("%s does not cover %s (its issuingDistributionPoint excludes it)", name, what),
			Fix: fmt.Sprintf("add the CRL of %q that covers this certificate", cert.Issuer.String())}
	}
	if p := crlTimeOK(c, now); p != "" {
		fix := "fetch a fresh CRL from the CA (with OpenSSL: openssl ca -gencrl -out FILE) and replace " + orFile(c.Source) +
			"; pgsecure re-reads it for the next connection"
		if c.List.ThisUpdate.After(now) {
			fix = "check this machine's clock, or wait until the CRL becomes valid"
		}
		return &Error{Problem: name + " " + p, Fix: fix}
	}
	if err := c.List.CheckSignatureFrom(issuer); err != nil {
		return &Error{Problem: fmt.Sprintf("%s names %q as its issuer but is not signed by that CA's key", name, c.List.Issuer.String()),
			Fix: fmt.Sprintf("replace it with the CRL the CA %q signed (openssl ca -gencrl -out FILE with that CA's key)", issuer.Subject.String()), Err: err}
	}
	if c.critical {
		return &Error{Problem: name + " has a critical extension that libpq (OpenSSL) does not process, so it cannot be used",
			Fix: "have the CA issue the CRL without that critical extension"}
	}
	for _, r := range c.List.RevokedCertificateEntries {
		if r.SerialNumber.Cmp(cert.SerialNumber) != 0 || r.ReasonCode == reasonRemoveFromCRL {
			continue
		}
		fix := "the CA revoked the server certificate: install a new one on the server (ssl_cert_file, ssl_key_file) and reload PostgreSQL " +
			"(SELECT pg_reload_conf()); if the revocation was a mistake, only a new CRL without it undoes it"
		if cert.IsCA {
			fix = fmt.Sprintf("the CA certificate %q was revoked: reissue the server certificate under a CA that is not revoked", cert.Subject.String())
		}
		return &Error{Problem: fmt.Sprintf("%s (serial %s) was revoked on %s, according to %s", what, SerialHex(cert),
			r.RevocationTime.UTC().Format(time.RFC3339), name), Fix: fix}
	}
	return nil
}

// SerialHex spells a certificate's serial number as openssl prints it
// (openssl x509 -serial): upper-case hex, two digits per byte.
func SerialHex(c *x509.Certificate) string {
	b := c.SerialNumber.Bytes()
	if len(b) == 0 {
		return "00"
	}
	s := strings.ToUpper(fmt.Sprintf("%x", b))
	if c.SerialNumber.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// DescribeCRL names a CRL in messages: issuer, number and file.
func DescribeCRL(c *CRL) string {
	s := fmt.Sprintf("the CRL of %q", c.List.Issuer.String())
	if c.List.Number != nil {
		s += fmt.Sprintf(" (crlNumber %s)", c.List.Number.String())
	}
	if c.Source != "" {
		s += " in " + c.Source
	}
	return s
}

func describe(chain []*x509.Certificate, depth int) string {
	switch {
	case depth == 0:
		return "the server certificate"
	case depth == len(chain)-1:
		return fmt.Sprintf("the root CA certificate %q", chain[depth].Subject.String())
	}
	return fmt.Sprintf("the intermediate CA certificate %q", chain[depth].Subject.String())
}

func orFile(s string) string {
	if s == "" {
		return "the CRL"
	}
	return s
}
