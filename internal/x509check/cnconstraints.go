package x509check

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CheckCommonNameConstraints keeps the chains whose DNS name constraints
// accept the leaf's Common Names, as OpenSSL's chain verification does
// (check_name_constraints and NAME_CONSTRAINTS_check_CN in v3_ncons.c, with
// the host flags libpq leaves at zero): when the leaf has no dNSName
// subjectAltName, every Common Name of its subject that looks like a host
// name (see cnHostName) must lie in the permitted dNSName subtrees of every
// CA above it that has some, and in none of their excluded ones. IP address
// constraints are not applied to Common Names, as OpenSSL does not. A Common
// Name with an embedded NUL byte is refused whenever a CA of the chain has
// name constraints.
//
// crypto/x509 applies name constraints to subjectAltNames only, so without
// this a CA constrained to example.com could issue for any host through a
// Common Name. It returns the chains that pass, or an *Error when none does.
func CheckCommonNameConstraints(chains [][]*x509.Certificate) ([][]*x509.Certificate, error) {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return chains, nil
	}
	leaf := chains[0][0]
	if hasDNSSAN(leaf) {
		return chains, nil
	}
	cns := commonNames(leaf.RawSubject)
	var kept [][]*x509.Certificate
	var first error
	for _, chain := range chains {
		err := cnConstraintsError(chain, cns)
		if err == nil {
			kept = append(kept, chain)
		} else if first == nil {
			first = err
		}
	}
	if len(kept) == 0 {
		return nil, first
	}
	return kept, nil
}

// cnConstraintsError checks the Common Names cns of chain[0] against the
// constraints of the certificates above it.
func cnConstraintsError(chain []*x509.Certificate, cns []commonName) error {
	leaf := chain[0]
	for _, ca := range chain[1:] {
		if !hasNameConstraints(ca) {
			continue
		}
		for _, cn := range cns {
			name, ok, nul := cnHostName(cn)
			if nul {
				return &Error{Subject: leaf.Subject.String(), Names: leafNames(leaf),
					Problem: fmt.Sprintf("its Common Name contains a NUL byte, which the name constraints of CA %q cannot be checked against", ca.Subject.String()),
					Fix:     "reissue the server certificate with a subjectAltName (DNS:host) the CA is permitted to issue"}
			}
			if !ok {
				continue
			}
			if why := dnsConstraintViolation(name, ca); why != "" {
				return &Error{Subject: leaf.Subject.String(), Names: leafNames(leaf),
					Problem: fmt.Sprintf("its Common Name %q is %s of CA %q, which issued the chain (libpq checks a host-like Common Name against them when there is no DNS subjectAltName)",
						name, why, ca.Subject.String()),
					Fix: fmt.Sprintf("reissue the server certificate for a host name CA %q may issue (%s), with subjectAltName=DNS:<that name>",
						ca.Subject.String(), describeDNSConstraints(ca))}
			}
		}
	}
	return nil
}

func hasDNSSAN(c *x509.Certificate) bool {
	sans, err := subjectAltNames(c)
	if err != nil {
		return len(c.DNSNames) > 0
	}
	for _, s := range sans {
		if !s.isIP {
			return true
		}
	}
	return false
}

var oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}

// hasNameConstraints reports whether c carries a nameConstraints extension
// (of any name type: OpenSSL checks the CN whenever one is present).
func hasNameConstraints(c *x509.Certificate) bool {
	for _, ext := range c.Extensions {
		if ext.Id.Equal(oidNameConstraints) {
			return true
		}
	}
	return false
}

// dnsConstraintViolation is nc_match for a dNSName: "" when name is
// permitted by ca, otherwise why not.
func dnsConstraintViolation(name string, ca *x509.Certificate) string {
	if len(ca.PermittedDNSDomains) > 0 {
		permitted := false
		for _, base := range ca.PermittedDNSDomains {
			if ncDNS(name, base) {
				permitted = true
				break
			}
		}
		if !permitted {
			return "outside the permitted DNS name constraints (" + strings.Join(ca.PermittedDNSDomains, ", ") + ")"
		}
	}
	for _, base := range ca.ExcludedDNSDomains {
		if ncDNS(name, base) {
			return "inside the excluded DNS name constraint " + fmt.Sprintf("%q", base)
		}
	}
	return ""
}

func describeDNSConstraints(ca *x509.Certificate) string {
	var parts []string
	if len(ca.PermittedDNSDomains) > 0 {
		parts = append(parts, "permitted: "+strings.Join(ca.PermittedDNSDomains, ", "))
	}
	if len(ca.ExcludedDNSDomains) > 0 {
		parts = append(parts, "excluded: "+strings.Join(ca.ExcludedDNSDomains, ", "))
	}
	return strings.Join(parts, "; ")
}

// ncDNS is OpenSSL's nc_dns: an empty base matches everything; otherwise
// name ends with base (ASCII case folded) and, when longer, either base
// starts with "." or the character before the suffix is ".".
func ncDNS(name, base string) bool {
	if base == "" {
		return true
	}
	if len(name) < len(base) {
		return false
	}
	suffix := name[len(name)-len(base):]
	if len(name) > len(base) && base[0] != '.' && name[len(name)-len(base)-1] != '.' {
		return false
	}
	return EqualFoldASCII(suffix, base)
}

// commonName is one CN attribute value, with its ASN.1 string tag.
type commonName struct {
	tag   int
	bytes []byte
}

// commonNames returns every CN attribute of a DER subject, in order.
func commonNames(rawSubject []byte) []commonName {
	var rdns []rdnSET
	if _, err := asn1.Unmarshal(rawSubject, &rdns); err != nil {
		return nil
	}
	var out []commonName
	for _, rdn := range rdns {
		for _, atv := range rdn {
			if atv.Type.Equal(oidCommonName) {
				out = append(out, commonName{tag: atv.Value.Tag, bytes: atv.Value.Bytes})
			}
		}
	}
	return out
}

// cnHostName is OpenSSL's cn2dnsid: the CN converted to UTF-8, trailing NUL
// bytes dropped, is a host name when it holds only ASCII letters, digits,
// "_", "-" and ".", no "-" or "." first or last, no "." next to another "."
// or a "-", and at least one "." (a single label is not checked). nul
// reports an embedded NUL byte, which OpenSSL refuses.
func cnHostName(cn commonName) (name string, ok, nul bool) {
	b := toUTF8(cn)
	b = bytes.TrimRight(b, "\x00")
	if bytes.IndexByte(b, 0) >= 0 {
		return "", false, true
	}
	isDNS := false
	for i, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' {
			continue
		}
		if i > 0 && i < len(b)-1 {
			if c == '-' {
				continue
			}
			if c == '.' && b[i+1] != '.' && b[i-1] != '-' && b[i+1] != '-' {
				isDNS = true
				continue
			}
		}
		isDNS = false
		break
	}
	return string(b), isDNS, false
}

// toUTF8 is ASN1_STRING_to_UTF8 for a CN; a CN of another string type
// is taken as it is.
func toUTF8(cn commonName) []byte {
	if s, ok := asn1StringToUTF8(cbasn1.Tag(cn.tag), cn.bytes); ok {
		return s
	}
	return cn.bytes
}
