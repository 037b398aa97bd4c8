package main

import (
	"fmt"
	"math/big"
)

// hexSerial writes a certificate serial number as `openssl x509 -noout
// -serial` does: upper-case hexadecimal, two digits a byte, no separators
// (0A1B...). The same text appears in an `openssl ca` index.txt and in
// `openssl crl -text`, so an operator can grep for it.
func hexSerial(n *big.Int) string {
	if n == nil {
		return ""
	}
	b := n.Bytes()
	if len(b) == 0 {
		return "00"
	}
	s := fmt.Sprintf("%X", b)
	if n.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// hexSerialOf converts a decimal serial number (as verify.Certificate and
// pg_stat_ssl give it) to hexSerial's form; text that is not a decimal
// number is returned unchanged.
func hexSerialOf(decimal string) string {
	n, ok := new(big.Int).SetString(decimal, 10)
	if !ok {
		return decimal
	}
	return hexSerial(n)
}
