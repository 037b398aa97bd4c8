package tlspolicy

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pgsecure/pgsecure/internal/x509check"
	"github.com/pgsecure/pgsecure/verify"
)

// ParsePins checks that each pin is the standard base64 encoding of a
// 32-byte SHA-256 digest, as SPKIPin returns. The error wraps
// shared.ErrInsecureConfig and says how to compute a pin.
func ParsePins(pins []string) error {
	const how = "compute pins with pgsecure.SPKIPin or: openssl x509 -in CERT -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"
	if len(pins) == 0 {
		return configErr("SPKIPins", "builder", "no pin given", how)
	}
	for _, p := range pins {
		problem := ""
		raw, err := base64.StdEncoding.Strict().DecodeString(p)
		switch {
		case strings.HasPrefix(p, "sha256/"):
			problem = fmt.Sprintf("pin %q carries an HPKP/curl prefix", p)
		case len(p) == 64 && isHex(p):
			problem = fmt.Sprintf("pin %q is hexadecimal; pins are base64", p)
		case err != nil:
			problem = fmt.Sprintf("pin %q is not standard base64", p)
		case len(raw) != sha256.Size:
			problem = fmt.Sprintf("pin %q decodes to %d bytes, not the 32 of a SHA-256 digest", p, len(raw))
		}
		if problem != "" {
			return configErr("SPKIPins", "builder", problem, "pass only the base64 digest; "+how)
		}
	}
	return nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// SPKIPin is pgsecure.SPKIPin: the pin of the first certificate in certPEM.
func SPKIPin(certPEM []byte) (string, error) {
	c, _, err := NextPEMCert(certPEM)
	if err != nil {
		return "", &verify.ConfigError{Setting: "SPKIPin", Problem: "cannot read the certificate", Err: err}
	}
	if c == nil {
		return "", configErr("SPKIPin", "", "no PEM \"CERTIFICATE\" block in the input",
			"pass the certificate in PEM form (a DER file can be converted with: openssl x509 -inform der -in FILE -out FILE.pem)")
	}
	return x509check.SPKIPin(c), nil
}
