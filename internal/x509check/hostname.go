package x509check

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// MatchHostname checks a server certificate against the host the client
// connected to, with libpq's sslmode=verify-full rules
// (pgtls_verify_peer_name_matches_certificate_guts and
// fe-secure-common.c), in the certificate's own order:
//
//   - the host is an IP address when inet_aton or inet_pton(AF_INET6)
//     accepts it (see HostAddr), otherwise a DNS name;
//   - each dNSName SAN is compared with the host byte for byte, folding
//     ASCII letters only (pg_strcasecmp): "ſ" is not "s" and the Kelvin sign
//     is not "k"; a leading "*." stands for one label;
//   - each 4-byte iPAddress SAN is compared with inet_aton(host), each
//     16-byte one with inet_pton(AF_INET6, host): an IPv4-mapped IPv6 host
//     does not match an IPv4 entry;
//   - the first Common Name of the subject, as encoded (a BMPString CN holds
//     NUL bytes and is refused), is consulted only when no SAN of the host's
//     own kind exists;
//   - a name with an embedded NUL byte ends the check with a refusal.
//
// It returns nil on a match, otherwise an *Error naming what the
// certificate covers and the subjectAltName it should carry.
func MatchHostname(cert *x509.Certificate, host string) error {
	if host == "" {
		return &Error{Problem: "no host name to verify the certificate against",
			Fix: "connect with host= set to the name in the server certificate"}
	}
	hostAddr, hostIsIP := HostAddr(host)
	sans, err := subjectAltNames(cert)
	if err != nil {
		return &Error{Subject: cert.Subject.String(), Problem: "its subjectAltName extension cannot be read", Err: err}
	}
	checkCN := true
	var examined []string
	for _, san := range sans {
		if san.isIP == hostIsIP {
			checkCN = false // a SAN of the host's kind rules out the CN
		}
		examined = append(examined, san.String())
		ok, err := san.matches(host)
		if err != nil {
			return &Error{Subject: cert.Subject.String(), Names: examined, Problem: err.Error()}
		}
		if ok {
			return nil
		}
	}
	if checkCN {
		if cn, ok := firstCommonName(cert.RawSubject); ok {
			examined = append(examined, string(cn))
			ok, err := matchName(cn, host, "Common Name")
			if err != nil {
				return &Error{Subject: cert.Subject.String(), Names: examined, Problem: err.Error()}
			}
			if ok {
				return nil
			}
		}
	}
	return mismatch(cert, host, hostAddr, hostIsIP, examined)
}

// mismatch explains a certificate that names other hosts. For an IP host
// the hint carries the address in the dotted form openssl reads back
// (openssl parses "IP:010.0.0.1" as 10.0.0.1, inet_aton as 8.0.0.1).
func mismatch(cert *x509.Certificate, host string, addr netip.Addr, isIP bool, examined []string) error {
	kind := "DNS:" + host
	if isIP {
		kind = "IP:" + addr.String()
	}
	e := &Error{
		Subject: cert.Subject.String(),
		Names:   examined,
		Fix: fmt.Sprintf("connect using a name the certificate covers, or reissue the server certificate with "+
			"subjectAltName=%s (openssl: -addext \"subjectAltName=%s\")", kind, kind),
	}
	if len(examined) == 0 {
		e.Problem = "the certificate names no host (no subjectAltName and no Common Name)"
	} else {
		e.Problem = fmt.Sprintf("the certificate covers %s, not %q", strings.Join(quoteAll(examined), ", "), host)
	}
	if isIP && addr.String() != host {
		e.Problem += fmt.Sprintf(" (libpq reads that host as the address %s)", addr)
	}
	return e
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// san is one dNSName or iPAddress entry, as encoded.
type san struct {
	isIP bool
	raw  []byte
}

func (s san) String() string {
	if s.isIP && (len(s.raw) == 4 || len(s.raw) == 16) {
		return net.IP(s.raw).String()
	}
	return string(s.raw)
}

func (s san) matches(host string) (bool, error) {
	if !s.isIP {
		return matchName(s.raw, host, "DNS name")
	}
	switch len(s.raw) {
	case 4:
		a, ok := ParseIPv4(host)
		return ok && a.As4() == [4]byte(s.raw), nil
	case 16:
		a, ok := parseIPv6(host)
		return ok && a.As16() == [16]byte(s.raw), nil
	}
	return false, fmt.Errorf("the certificate holds an IP address of invalid length %d", len(s.raw))
}

// matchName is pq_verify_peer_name_matches_certificate_name.
func matchName(name []byte, host, what string) (bool, error) {
	if bytes.IndexByte(name, 0) >= 0 {
		return false, fmt.Errorf("a %s in the certificate contains a NUL byte", what)
	}
	return EqualFoldASCII(string(name), host) || wildcardMatch(string(name), host), nil
}

// EqualFoldASCII is libpq's pg_strcasecmp(a, b) == 0 for host names: bytes
// are compared with ASCII letters folded and nothing else (strings.EqualFold
// would also fold "ſ" to "s" and the Kelvin sign to "k").
func EqualFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// wildcardMatch is libpq's wildcard_certificate_match: the pattern starts
// with "*.", the host ends with the rest of it (ASCII case folded), and the
// host has no dot before the last character the "*" covers. (So, as in
// libpq, "*" covers one label, and also a label followed by an empty one:
// "*.example.com" matches "a..example.com".)
func wildcardMatch(pattern, host string) bool {
	lp, lh := len(pattern), len(host)
	if lp < 3 || pattern[0] != '*' || pattern[1] != '.' || lp > lh {
		return false
	}
	if !EqualFoldASCII(pattern[1:], host[lh-lp+1:]) {
		return false
	}
	return strings.IndexByte(host, '.') >= lh-lp
}

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidCommonName     = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// GeneralName tags (RFC 5280, context-specific, implicit).
const (
	tagDNSName   = 2
	tagIPAddress = 7
)

// subjectAltNames returns the dNSName and iPAddress entries of the
// certificate's subjectAltName extension in their encoded order (crypto/x509
// separates them and so loses the order libpq walks them in).
func subjectAltNames(cert *x509.Certificate) ([]san, error) {
	var out []san
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil {
			return nil, err
		} else if len(rest) != 0 || !seq.IsCompound || seq.Tag != asn1.TagSequence {
			return nil, fmt.Errorf("x509: malformed subjectAltName")
		}
		for rest := seq.Bytes; len(rest) > 0; {
			var v asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &v); err != nil {
				return nil, err
			}
			if v.Class != asn1.ClassContextSpecific {
				continue
			}
			switch v.Tag {
			case tagDNSName:
				out = append(out, san{raw: v.Bytes})
			case tagIPAddress:
				out = append(out, san{isIP: true, raw: v.Bytes})
			}
		}
	}
	return out, nil
}

// attribute is an AttributeTypeAndValue whose value stays encoded.
type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rdnSET is one RelativeDistinguishedName (encoding/asn1 reads a type
// whose name ends in "SET" as a SET OF).
type rdnSET []attribute

// firstCommonName returns the content bytes of the subject's first CN
// attribute, as OpenSSL's X509_NAME_get_index_by_NID(name, NID_commonName,
// -1) and ASN1_STRING_get0_data give them to libpq: not decoded, so a
// BMPString keeps its NUL bytes. (crypto/x509's Subject.CommonName is the
// last CN, decoded.)
func firstCommonName(rawSubject []byte) ([]byte, bool) {
	var rdns []rdnSET
	if rest, err := asn1.Unmarshal(rawSubject, &rdns); err != nil || len(rest) != 0 {
		return nil, false
	}
	for _, rdn := range rdns {
		for _, atv := range rdn {
			if atv.Type.Equal(oidCommonName) {
				return atv.Value.Bytes, true
			}
		}
	}
	return nil, false
}
