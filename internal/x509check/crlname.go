package x509check

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// NamesEqual reports whether two DER-encoded distinguished names are the
// same name for OpenSSL (X509_NAME_cmp): equal bytes, or equal canonical
// encodings (see canonicalName).
func NamesEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ca, errA := canonicalName(a)
	cb, errB := canonicalName(b)
	return errA == nil && errB == nil && bytes.Equal(ca, cb)
}

// NameHash is OpenSSL's X509_NAME_hash_ex of a DER-encoded name: the first
// four bytes, little-endian, of the SHA-1 of its canonical encoding. It
// names the files of an `openssl rehash` directory ("%08x.r0" for CRLs).
func NameHash(der []byte) (uint32, error) {
	canon, err := canonicalName(der)
	if err != nil {
		return 0, err
	}
	sum := sha1.Sum(canon)
	return binary.LittleEndian.Uint32(sum[:4]), nil
}

// canonicalName is OpenSSL's x509_name_canon: the concatenated DER of the
// name's RDN SETs (without the outer SEQUENCE), each attribute value of a
// string type converted to a UTF8String, with leading and trailing white
// space removed, inner runs of white space collapsed to one space and ASCII
// letters lower-cased (asn1_string_canon).
func canonicalName(der []byte) ([]byte, error) {
	in := cryptobyte.String(der)
	var rdns cryptobyte.String
	if !in.ReadASN1(&rdns, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("malformed name")
	}
	var out cryptobyte.Builder
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return nil, errors.New("malformed RDN")
		}
		var atvs [][]byte
		for !set.Empty() {
			var atv, oid, value cryptobyte.String
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1Element(&oid, cbasn1.OBJECT_IDENTIFIER) ||
				!atv.ReadAnyASN1(&value, &tag) || !atv.Empty() {
				return nil, errors.New("malformed attribute")
			}
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(oid)
				if s, ok := canonicalString(tag, value); ok {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes(s) })
				} else {
					b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(value) })
				}
			})
			enc, err := b.Bytes()
			if err != nil {
				return nil, err
			}
			atvs = append(atvs, enc)
		}
		slices.SortFunc(atvs, bytes.Compare) // DER SET OF order
		out.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for _, a := range atvs {
				b.AddBytes(a)
			}
		})
	}
	return out.Bytes()
}

// canonicalString converts a value of a canonicalised string type to
// OpenSSL's canonical UTF-8 form; ok is false for other types, which are
// kept as they are.
func canonicalString(tag cbasn1.Tag, v []byte) ([]byte, bool) {
	s, ok := asn1StringToUTF8(tag, v)
	if !ok {
		return nil, false
	}
	isSpace := func(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= 0x80:
			out = append(out, c)
			i++
		case isSpace(c):
			out = append(out, ' ')
			for i < len(s) && isSpace(s[i]) {
				i++
			}
		default:
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
			i++
		}
	}
	return out, true
}
