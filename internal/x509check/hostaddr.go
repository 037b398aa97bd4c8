package x509check

import (
	"net/netip"
	"strings"
)

// HostAddr reports whether libpq treats host as an IP address, and which
// one. libpq (fe-secure-openssl.c is_ip_address) asks inet_aton first, then
// inet_pton(AF_INET6): so "192.000.002.001", "127.1", "0x7f.1" and
// "017700000001" are IPv4 addresses, as psql agrees. An IPv6 zone
// ("fe80::1%eth0") is not an address for inet_pton.
func HostAddr(host string) (netip.Addr, bool) {
	if a, ok := ParseIPv4(host); ok {
		return a, true
	}
	return parseIPv6(host)
}

// parseIPv6 is inet_pton(AF_INET6): colon notation only (never a bare
// dotted quad), no zone.
func parseIPv6(host string) (netip.Addr, bool) {
	if !strings.Contains(host, ":") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// ParseIPv4 is glibc's inet_aton, which libpq uses both to decide that a
// host is an IPv4 address and to compare it with a certificate's 4-byte
// iPAddress entries. It accepts one to four parts separated by dots, each
// written as in C (0x or 0X: hexadecimal; a leading 0: octal; otherwise
// decimal); the last part fills the remaining bytes ("127.1" is
// 127.0.0.1, "3232235777" is 192.168.1.1). Text after the address is
// accepted when it starts with ASCII white space, as inet_aton does.
func ParseIPv4(s string) (netip.Addr, bool) {
	var parts []uint64
	i := 0
	for {
		if i >= len(s) || !isDigit(s[i]) {
			return netip.Addr{}, false
		}
		v, n, ok := parseCNumber(s[i:])
		if !ok {
			return netip.Addr{}, false
		}
		i += n
		if i < len(s) && s[i] == '.' {
			// a.b.c.d: only the last part may exceed one byte.
			if len(parts) > 2 || v > 0xff {
				return netip.Addr{}, false
			}
			parts = append(parts, v)
			i++
			continue
		}
		if i < len(s) && !isCSpace(s[i]) {
			return netip.Addr{}, false
		}
		// The last part fills the bytes the others left: 32, 24, 16 or 8 bits.
		if v > uint64(0xffffffff)>>(8*len(parts)) {
			return netip.Addr{}, false
		}
		var b [4]byte
		copy(b[:], bytesOf(parts))
		last := uint32(v)
		for k := 3; k >= len(parts); k-- {
			b[k] = byte(last)
			last >>= 8
		}
		return netip.AddrFrom4(b), true
	}
}

func bytesOf(parts []uint64) []byte {
	b := make([]byte, len(parts))
	for i, p := range parts {
		b[i] = byte(p)
	}
	return b
}

// parseCNumber is strtoul(s, &end, 0) for a string starting with a digit:
// it returns the value, how many bytes it read, and false when the value
// does not fit in 32 bits (inet_aton's limit for any part).
func parseCNumber(s string) (uint64, int, bool) {
	base, i := uint64(10), 0
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && hexVal(s[2]) >= 0:
		base, i = 16, 2
	case s[0] == '0':
		base = 8
	}
	var v uint64
	start := i
	for ; i < len(s); i++ {
		d := hexVal(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		v = v*base + uint64(d)
		if v > 0xffffffff {
			return 0, 0, false
		}
	}
	if i == start { // not reached: s starts with a digit
		return 0, 0, false
	}
	return v, i, true
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// UseSNI reports whether libpq sends host as TLS Server Name Indication
// (sslsni=1): not when it is made only of digits and dots, nor when it
// holds a colon (RFC 6066 forbids literal addresses). So "192.000.002.001"
// is not sent, whereas crypto/tls would send it (net.ParseIP rejects it).
func UseSNI(host string) bool {
	return strings.Trim(host, "0123456789.") != "" && !strings.Contains(host, ":")
}

// NumericIPv4 is the address glibc's getaddrinfo returns for host without
// asking DNS (inet_aton_exact: an inet_aton spelling with nothing after
// it), which is where libpq connects for "192.000.002.001" or "127.1". Go's
// resolver sends such names to DNS instead.
func NumericIPv4(host string) (netip.Addr, bool) {
	if strings.ContainsAny(host, " \t\n\v\f\r") {
		return netip.Addr{}, false
	}
	return ParseIPv4(host)
}
