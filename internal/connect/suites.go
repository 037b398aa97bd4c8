package connect

import (
	"crypto/tls"
	"fmt"
	"slices"
)

// secureSuites are the cipher suites crypto/tls lists as secure
// (tls.CipherSuites: TLS 1.3 suites included, RC4, 3DES and CBC-SHA256
// suites excluded). A caller's TLSConfig.CipherSuites may make Go offer
// others; the local check refuses a connection that negotiated one.
var secureSuites = func() map[uint16]bool {
	m := map[uint16]bool{}
	for _, s := range tls.CipherSuites() {
		m[s.ID] = true
	}
	return m
}()

// secureGroups are the key exchange groups accepted: those crypto/tls
// implements (X25519, P-256, P-384, P-521 and the hybrid post-quantum
// X25519MLKEM768, SecP256r1MLKEM768 and SecP384r1MLKEM1024). Zero is a
// TLS 1.2 RSA key exchange, whose suites the suite check decides on.
var secureGroups = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521, tls.X25519MLKEM768,
	4587, 4589} // SecP256r1MLKEM768, SecP384r1MLKEM1024 (named constants from Go 1.26)

// cipherProblem says what is wrong with the cipher suite or key exchange
// st negotiated, or "" when both are secure.
func cipherProblem(st tls.ConnectionState) string {
	const fix = "configure the server to offer a secure suite (PostgreSQL: the default ssl_ciphers, or " +
		"ssl_min_protocol_version = 'TLSv1.3') and do not set TLSConfig.CipherSuites or CurvePreferences on a pgsecure configuration"
	if !secureSuites[st.CipherSuite] {
		return fmt.Sprintf("negotiated cipher suite %s (0x%04x), which crypto/tls lists as insecure; only the suites of "+
			"tls.CipherSuites() are accepted; %s", tls.CipherSuiteName(st.CipherSuite), st.CipherSuite, fix)
	}
	if st.CurveID != 0 && !slices.Contains(secureGroups, st.CurveID) {
		return fmt.Sprintf("negotiated key exchange %s (%d), which crypto/tls does not implement as secure; %s", st.CurveID, uint16(st.CurveID), fix)
	}
	return ""
}
