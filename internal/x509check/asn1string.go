package x509check

import (
	"encoding/binary"
	"slices"
	"unicode/utf16"
	"unicode/utf8"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ASN.1 string tags that Go's cryptobyte/asn1 does not name.
const (
	tagT61String       = cbasn1.Tag(20)
	tagVisibleString   = cbasn1.Tag(26)
	tagUniversalString = cbasn1.Tag(28)
	tagBMPString       = cbasn1.Tag(30)
)

// asn1StringToUTF8 is OpenSSL's ASN1_STRING_to_UTF8 for the string types a
// name attribute may have: UTF-8 and its ASCII subsets as they are,
// TeletexString read as Latin-1 (one byte per character), BMPString as
// UTF-16 and UniversalString as UTF-32, both big-endian. ok is false for
// any other type.
func asn1StringToUTF8(tag cbasn1.Tag, v []byte) (s []byte, ok bool) {
	switch tag {
	case cbasn1.UTF8String, cbasn1.PrintableString, cbasn1.IA5String, tagVisibleString:
		return slices.Clone(v), true
	case tagT61String:
		for _, c := range v {
			s = utf8.AppendRune(s, rune(c))
		}
	case tagBMPString:
		u := make([]uint16, 0, len(v)/2)
		for i := 0; i+1 < len(v); i += 2 {
			u = append(u, binary.BigEndian.Uint16(v[i:]))
		}
		for _, r := range utf16.Decode(u) {
			s = utf8.AppendRune(s, r)
		}
	case tagUniversalString:
		for i := 0; i+3 < len(v); i += 4 {
			s = utf8.AppendRune(s, rune(binary.BigEndian.Uint32(v[i:])))
		}
	default:
		return nil, false
	}
	return s, true
}
