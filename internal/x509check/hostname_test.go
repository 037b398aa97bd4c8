package x509check

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func issue(t *testing.T, cn string, dns []string, ips ...string) *x509.Certificate {
	t.Helper()
	ca, err := certgen.NewCA("test CA", certgen.ECDSAP256)
	require.NoError(t, err)
	o := certgen.Options{CommonName: cn, DNSNames: dns}
	for _, ip := range ips {
		o.IPs = append(o.IPs, net.ParseIP(ip))
	}
	p, err := ca.Issue(o)
	require.NoError(t, err)
	return p.Cert
}

// TestMatchHostnameLibpqRules checks each of libpq's verify-full name rules.
func TestMatchHostnameLibpqRules(t *testing.T) {
	cases := []struct {
		name  string
		cert  *x509.Certificate
		host  string
		match bool
	}{
		{"SAN DNS exact", issue(t, "ignored", []string{"db.example.com"}), "db.example.com", true},
		{"SAN DNS case-insensitive", issue(t, "", []string{"DB.Example.COM"}), "db.example.com", true},
		{"SAN DNS wrong host", issue(t, "", []string{"db.example.com"}), "other.example.com", false},
		{"CN ignored when DNS SAN present", issue(t, "db.example.com", []string{"other.example.com"}), "db.example.com", false},
		{"CN-only cert (seed style)", issue(t, "db.example.com", nil), "db.example.com", true},
		{"CN-only wrong host", issue(t, "db.example.com", nil), "evil.example.com", false},
		{"wildcard one label", issue(t, "", []string{"*.example.com"}), "db.example.com", true},
		{"wildcard not two labels", issue(t, "", []string{"*.example.com"}), "a.db.example.com", false},
		{"wildcard not apex", issue(t, "", []string{"*.example.com"}), "example.com", false},
		{"wildcard in CN", issue(t, "*.example.com", nil), "db.example.com", true},
		{"IP SAN", issue(t, "", nil, "10.1.2.3"), "10.1.2.3", true},
		{"IP SAN wrong IP", issue(t, "", nil, "10.1.2.3"), "10.1.2.4", false},
		{"IPv6 SAN", issue(t, "", nil, "::1"), "::1", true},
		{"IP host matches CN when only DNS SANs", issue(t, "10.1.2.3", []string{"db.example.com"}), "10.1.2.3", true},
		{"IP host ignores CN when IP SAN present", issue(t, "10.1.2.3", nil, "10.9.9.9"), "10.1.2.3", false},
		{"DNS host does not match IP SAN", issue(t, "", nil, "10.1.2.3"), "db.example.com", false},
		{"DNS host matches CN when only IP SANs", issue(t, "db.example.com", nil, "10.1.2.3"), "db.example.com", true},
		{"IP host matches DNS SAN spelled as IP", issue(t, "", []string{"10.1.2.3"}), "10.1.2.3", true},
		// Issue 15.2: inet_aton spellings are addresses, compared as such.
		{"IPv4 with leading zeros", issue(t, "", nil, "192.0.2.1"), "192.000.002.001", true},
		{"IPv4 short form", issue(t, "", nil, "127.0.0.1"), "127.1", true},
		{"IPv4 hex", issue(t, "", nil, "127.0.0.1"), "0x7f.0.0.1", true},
		{"IPv4 octal is not decimal", issue(t, "", nil, "10.0.0.1"), "010.0.0.1", false},
		{"IPv4 spelling ignores CN when IP SAN present", issue(t, "192.000.002.001", nil, "192.0.2.9"), "192.000.002.001", false},
		{"IPv4-mapped IPv6 host is not an IPv4 entry", issue(t, "", nil, "192.0.2.1"), "::ffff:192.0.2.1", false},
		// Issue 9, defect 3: ASCII folding only. (A dNSName SAN cannot hold
		// these: crypto/x509 refuses to parse a non-IA5String dNSName.)
		{"long s is not s", issue(t, "ſerver.example.com", nil), "server.example.com", false},
		{"Kelvin sign is not k", issue(t, "\u212Aey.example.com", nil), "key.example.com", false},
		{"Kelvin sign is not k (wildcard)", issue(t, "*.e\u212Aample.com", nil), "db.ekample.com", false},
		{"non-ASCII bytes compare exactly", issue(t, "ſerver.example.com", nil), "ſerver.example.com", true},
		{"libpq wildcard quirk: label then empty label", issue(t, "", []string{"*.example.com"}), "a..example.com", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := MatchHostname(c.cert, c.host)
			if c.match {
				assert.NoError(t, err)
				return
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Contains(t, err.Error(), "subjectAltName=", "the error says how to fix the certificate")
		})
	}
}

// TestMismatchHintForIPv4Spelling: the hint names the address in the
// dotted form openssl reads back, as an IP entry, never as a DNS name.
func TestMismatchHintForIPv4Spelling(t *testing.T) {
	err := MatchHostname(issue(t, "", []string{"db.example.com"}), "192.000.002.001")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `subjectAltName=IP:192.0.2.1"`)
	assert.Contains(t, err.Error(), "libpq reads that host as the address 192.0.2.1")
	assert.NotContains(t, err.Error(), "DNS:192.000.002.001")

	err = MatchHostname(issue(t, "", []string{"db.example.com"}), "other.example.com")
	assert.Contains(t, err.Error(), `subjectAltName=DNS:other.example.com"`)
}

func TestMatchHostnameNoNames(t *testing.T) {
	err := MatchHostname(issue(t, "", nil), "db.example.com")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "names no host")
	assert.Error(t, MatchHostname(issue(t, "db", nil), ""))
}

func TestWildcardMatch(t *testing.T) {
	assert.True(t, wildcardMatch("*.a.b", "x.a.b"))
	assert.True(t, wildcardMatch("*.A.B", "x.a.b"))
	assert.False(t, wildcardMatch("*.a.b", ".a.b"))
	assert.False(t, wildcardMatch("a*.a.b", "ab.a.b"))
	assert.False(t, wildcardMatch("*.", "x."))
	assert.False(t, wildcardMatch("*.a.b", "a.b"))
	assert.False(t, wildcardMatch("*.a.b", "x.y.a.b"))
}

func TestEqualFoldASCII(t *testing.T) {
	assert.True(t, EqualFoldASCII("DB.Example.COM", "db.example.com"))
	assert.False(t, EqualFoldASCII("ſ", "s"))
	assert.False(t, EqualFoldASCII("\u212A", "k"))
	assert.False(t, EqualFoldASCII("É", "é"), "libpq folds only ASCII letters")
	assert.False(t, EqualFoldASCII("a", "ab"))
}

// rawCert self-signs a certificate with a hand-encoded subject and
// subjectAltName, for encodings crypto/x509 does not produce.
func rawCert(t *testing.T, rawSubject []byte, sanValue []byte) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), RawSubject: rawSubject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	if sanValue != nil {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidSubjectAltName, Value: sanValue}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

func subjectCN(t *testing.T, tag int, content []byte) []byte {
	t.Helper()
	atv := attribute{Type: oidCommonName, Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: content}}
	b, err := asn1.Marshal([]rdnSET{{atv}})
	require.NoError(t, err)
	return b
}

func sanExt(t *testing.T, entries ...asn1.RawValue) []byte {
	t.Helper()
	b, err := asn1.Marshal(entries)
	require.NoError(t, err)
	return b
}

func dnsEntry(name string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagDNSName, Bytes: []byte(name)}
}

func ipEntry(ip []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagIPAddress, Bytes: ip}
}

// TestCommonNameAsEncoded: libpq compares the CN's encoded bytes, so a
// BMPString CN (UTF-16, with NUL bytes) is refused though it decodes to the
// host, and the first CN counts, not the last.
func TestCommonNameAsEncoded(t *testing.T) {
	var bmp []byte
	for _, u := range utf16.Encode([]rune("localhost")) {
		bmp = append(bmp, byte(u>>8), byte(u))
	}
	c := rawCert(t, subjectCN(t, asn1.TagBMPString, bmp), nil)
	require.Equal(t, "localhost", c.Subject.CommonName, "crypto/x509 decodes the BMPString")
	err := MatchHostname(c, "localhost")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Common Name in the certificate contains a NUL byte")

	utf8CN := rawCert(t, subjectCN(t, asn1.TagUTF8String, []byte("localhost")), nil)
	assert.NoError(t, MatchHostname(utf8CN, "LOCALHOST"))

	two, err := asn1.Marshal([]rdnSET{
		{{Type: oidCommonName, Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("first.example")}}},
		{{Type: oidCommonName, Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("last.example")}}},
	})
	require.NoError(t, err)
	c = rawCert(t, two, nil)
	assert.NoError(t, MatchHostname(c, "first.example"))
	assert.Error(t, MatchHostname(c, "last.example"))
}

// TestSANOrderAndNUL: names are walked in the certificate's order and the
// walk stops at the first match or at a name holding a NUL byte.
func TestSANOrderAndNUL(t *testing.T) {
	subject := subjectCN(t, asn1.TagUTF8String, []byte("cn.example"))
	ipFirst := rawCert(t, subject, sanExt(t, ipEntry([]byte{192, 0, 2, 1}), dnsEntry("evil\x00.example")))
	assert.NoError(t, MatchHostname(ipFirst, "192.0.2.1"), "the IP entry matches before the NUL name is reached")
	nulFirst := rawCert(t, subject, sanExt(t, dnsEntry("evil\x00.example"), ipEntry([]byte{192, 0, 2, 1})))
	err := MatchHostname(nulFirst, "192.0.2.1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NUL byte")

	// A URI entry is neither kind: the CN still counts.
	uri := rawCert(t, subject, sanExt(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte("https://x")}))
	assert.NoError(t, MatchHostname(uri, "cn.example"))
}
