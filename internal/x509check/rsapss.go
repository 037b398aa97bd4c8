package x509check

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// oidRSAPSS is id-RSASSA-PSS, the algorithm of an RSA-PSS public key.
var oidRSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}

// IsRSAPSS reports whether c's public key is an RSA-PSS key (algorithm
// id-RSASSA-PSS in its SubjectPublicKeyInfo, as `openssl genpkey
// -algorithm rsa-pss` makes). Go's crypto/tls cannot negotiate the
// rsa_pss_pss_* signature schemes such a key needs, so a Go client fails
// the handshake with "remote error: tls: handshake failure" against a
// server that uses one, while libpq connects.
func IsRSAPSS(c *x509.Certificate) bool {
	var spki struct {
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return false
	}
	return spki.Algorithm.Algorithm.Equal(oidRSAPSS)
}

// RSAPSSExplanation is the sentence pgsecure adds to a failed handshake
// with a server whose certificate holds an RSA-PSS key.
const RSAPSSExplanation = "the server's certificate holds an RSA-PSS key (openssl genpkey -algorithm rsa-pss), " +
	"which Go's crypto/tls cannot use (it does not offer the rsa_pss_pss_* signature schemes), so the handshake fails; " +
	"libpq connects. Reissue the server certificate with an ordinary RSA key (openssl genpkey -algorithm rsa; " +
	"TLS 1.3 still signs with RSA-PSS) or an ECDSA P-256 key"

// HandshakeHint is for a handshake the server refused ("remote error: tls:
// handshake failure") where the certificate could not be seen: the likeliest
// cause Go cannot fix, and how to confirm it.
const HandshakeHint = "if the server's certificate holds an RSA-PSS key, Go's crypto/tls cannot negotiate it " +
	"(libpq can): run `pgsecure check` to find out"

// ExplainHandshakeFailure returns RSAPSSExplanation when err is a TLS
// handshake refused by the server ("tls: handshake failure") and the
// PostgreSQL server at addr presents an RSA-PSS certificate (read with
// ProbeCertificate); otherwise "". It is meant for diagnostics (the check
// command), after a connection failed: it opens one more connection.
func ExplainHandshakeFailure(ctx context.Context, addr string, err error) string {
	if err == nil || !strings.Contains(err.Error(), "tls: handshake failure") {
		return ""
	}
	chain, perr := ProbeCertificate(ctx, addr)
	if perr != nil || len(chain) == 0 || !IsRSAPSS(chain[0]) {
		return ""
	}
	return RSAPSSExplanation
}

// ProbeCertificate asks the PostgreSQL server at addr for TLS (SSLRequest)
// and returns the certificates it presents, leaf first, unverified: use them
// only to describe the server. It offers TLS 1.2 and every signature scheme
// OpenSSL may need, including rsa_pss_pss_*, so it sees certificates that
// crypto/tls cannot negotiate (in TLS 1.2 the Certificate message is sent in
// the clear). It sends nothing but the SSLRequest and a ClientHello, and
// closes the connection after the server's Certificate message.
func ProbeCertificate(ctx context.Context, addr string) ([]*x509.Certificate, error) {
	conn, err := new(net.Dialer).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The end of ctx (deadline or cancellation) ends the probe, whatever it
	// waits for.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	sslRequest := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	if _, err := conn.Write(sslRequest); err != nil {
		return nil, err
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return nil, err
	}
	if answer[0] != 'S' {
		return nil, fmt.Errorf("pgsecure: the server at %s declined TLS (answered %q to SSLRequest)", addr, answer[0])
	}
	hello, err := clientHelloTLS12()
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(hello); err != nil {
		return nil, err
	}
	return readCertificateMessage(conn)
}

// TLS constants (RFC 5246, RFC 8446, RFC 8422).
const (
	recordHandshake   = 22
	recordAlert       = 21
	typeClientHello   = 1
	typeCertificate   = 11
	maxHandshakeBytes = 1 << 18
)

// clientHelloTLS12 is a TLS 1.2 ClientHello offering ECDHE and RSA key
// exchange with the signature schemes OpenSSL servers choose from.
func clientHelloTLS12() ([]byte, error) {
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		return nil, err
	}
	suites := []uint16{0xc02f, 0xc030, 0xcca8, 0xc02b, 0xc02c, 0xcca9, 0x009e, 0x009f, 0x009c, 0x009d, 0xc013, 0xc014, 0x002f, 0x0035, 0x00ff}
	sigAlgs := []uint16{0x0809, 0x080a, 0x080b, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0201, 0x0203}
	groups := []uint16{0x001d, 0x0017, 0x0018, 0x0019}

	var body []byte
	body = append(body, 0x03, 0x03)
	body = append(body, random...)
	body = append(body, 0) // no session id
	body = appendU16List(body, suites)
	body = append(body, 1, 0) // null compression
	var ext []byte
	ext = appendExt(ext, 0x000d, appendU16List(nil, sigAlgs))
	ext = appendExt(ext, 0x000a, appendU16List(nil, groups))
	ext = appendExt(ext, 0x000b, []byte{1, 0}) // uncompressed points
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)

	msg := append([]byte{typeClientHello}, u24(len(body))...)
	msg = append(msg, body...)
	rec := []byte{recordHandshake, 0x03, 0x01}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(msg)))
	return append(rec, msg...), nil
}

func appendU16List(b []byte, vs []uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(2*len(vs)))
	for _, v := range vs {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

func appendExt(b []byte, typ uint16, data []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

func u24(n int) []byte { return []byte{byte(n >> 16), byte(n >> 8), byte(n)} }

// readCertificateMessage reads handshake records until the server's
// Certificate message and parses its certificates.
func readCertificateMessage(r io.Reader) ([]*x509.Certificate, error) {
	var hs []byte
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("pgsecure: reading the server's TLS handshake: %w", err)
		}
		n := int(binary.BigEndian.Uint16(hdr[3:]))
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return nil, fmt.Errorf("pgsecure: reading the server's TLS handshake: %w", err)
		}
		switch hdr[0] {
		case recordAlert:
			return nil, fmt.Errorf("pgsecure: the server ended the TLS handshake with alert %v", payload)
		case recordHandshake:
		default:
			return nil, fmt.Errorf("pgsecure: unexpected TLS record type %d before the server's certificate", hdr[0])
		}
		if hs = append(hs, payload...); len(hs) > maxHandshakeBytes {
			return nil, errors.New("pgsecure: the server's TLS handshake is too large to inspect")
		}
		for len(hs) >= 4 {
			l := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
			if len(hs) < 4+l {
				break
			}
			typ, body := hs[0], hs[4:4+l]
			hs = hs[4+l:]
			if typ == typeCertificate {
				return parseCertificateList(body)
			}
		}
	}
}

func parseCertificateList(body []byte) ([]*x509.Certificate, error) {
	bad := errors.New("pgsecure: malformed TLS Certificate message")
	if len(body) < 3 {
		return nil, bad
	}
	list := body[3:]
	if int(body[0])<<16|int(body[1])<<8|int(body[2]) != len(list) {
		return nil, bad
	}
	var out []*x509.Certificate
	for len(list) > 0 {
		if len(list) < 3 {
			return nil, bad
		}
		l := int(list[0])<<16 | int(list[1])<<8 | int(list[2])
		if len(list) < 3+l {
			return nil, bad
		}
		c, err := x509.ParseCertificate(bytes.Clone(list[3 : 3+l]))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		list = list[3+l:]
	}
	return out, nil
}
