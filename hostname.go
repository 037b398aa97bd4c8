package pgsecure

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"net"
	"strings"
)

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// matchHostname checks a server certificate against the host the client
// connected to, with libpq's sslmode=verify-full rules
// (pgtls_verify_peer_name_matches_certificate_guts):
//
//   - every dNSName SAN is compared with the host (case-insensitively, with a
//     leading "*." wildcard standing for exactly one label), and every
//     iPAddress SAN with the host parsed as an address;
//   - the subject's Common Name is consulted only when the certificate has no
//     SAN of the host's own kind: no dNSName for a DNS host, no iPAddress for
//     an IP host.
//
// It returns nil on a match, otherwise an error naming what the certificate
// covers.
func matchHostname(cert *x509.Certificate, host string) error {
	if host == "" {
		return &CertificateError{Problem: "no host name to verify the certificate against",
			Fix: "connect with host= set to the name in the server certificate"}
	}
	hostIP := net.ParseIP(host)
	checkCN := true
	var examined []string
	for _, name := range cert.DNSNames {
		if hostIP == nil {
			checkCN = false
		}
		examined = append(examined, name)
		if strings.ContainsRune(name, 0) {
			return &CertificateError{Host: host, Problem: "a DNS name in the certificate contains a NUL byte"}
		}
		if strings.EqualFold(name, host) || wildcardMatch(name, host) {
			return nil
		}
	}
	for _, ip := range cert.IPAddresses {
		if hostIP != nil {
			checkCN = false
		}
		examined = append(examined, ip.String())
		if hostIP != nil && ip.Equal(hostIP) {
			return nil
		}
	}
	if checkCN {
		if cn, ok := firstCommonName(cert); ok {
			examined = append(examined, cn)
			if strings.ContainsRune(cn, 0) {
				return &CertificateError{Host: host, Problem: "the certificate's Common Name contains a NUL byte"}
			}
			if strings.EqualFold(cn, host) || wildcardMatch(cn, host) {
				return nil
			}
		}
	}
	return hostnameMismatch(cert, host, hostIP != nil, examined)
}

func hostnameMismatch(cert *x509.Certificate, host string, isIP bool, examined []string) error {
	kind := "DNS:" + host
	if isIP {
		kind = "IP:" + host
	}
	e := &CertificateError{
		Host:    host,
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
	return e
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// wildcardMatch is libpq's wildcard_certificate_match: the pattern must start
// with "*." and the "*" matches exactly one leading label (no dots).
func wildcardMatch(pattern, host string) bool {
	if len(pattern) < 3 || pattern[0] != '*' || pattern[1] != '.' || len(pattern) > len(host) {
		return false
	}
	suffix := pattern[1:]
	if !strings.EqualFold(suffix, host[len(host)-len(suffix):]) {
		return false
	}
	return !strings.Contains(host[:len(host)-len(suffix)], ".")
}

// firstCommonName returns the first CN attribute of the subject, as OpenSSL's
// X509_NAME_get_index_by_NID(name, NID_commonName, -1) does (Go's
// Subject.CommonName keeps the last one).
func firstCommonName(cert *x509.Certificate) (string, bool) {
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(oidCommonName) {
			if s, ok := atv.Value.(string); ok {
				return s, true
			}
			return fmt.Sprint(atv.Value), true
		}
	}
	return "", false
}
