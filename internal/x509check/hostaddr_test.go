package x509check

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestParseIPv4IsInetAton checks glibc inet_aton's spellings, which libpq
// uses for host-type detection and iPAddress comparison. Every expectation
// here is glibc 2.36's answer (as given by Python's socket.inet_aton, which
// calls it).
func TestParseIPv4IsInetAton(t *testing.T) {
	ok := map[string]string{
		"192.0.2.1":         "192.0.2.1",
		"192.000.002.001":   "192.0.2.1", // leading zeros: octal 0, 2, 1
		"010.0.0.1":         "8.0.0.1",   // octal
		"0x7f.0.0.1":        "127.0.0.1", // hex
		"0X7F.0.0.0X1":      "127.0.0.1",
		"127.1":             "127.0.0.1", // a.b: b fills 24 bits
		"127.0.1":           "127.0.0.1", // a.b.c: c fills 16 bits
		"10.0.65535":        "10.0.255.255",
		"3232235777":        "192.168.1.1", // one part: 32 bits
		"0xc0a80101":        "192.168.1.1",
		"017700000001":      "127.0.0.1",
		"0":                 "0.0.0.0",
		"255.255.255.255":   "255.255.255.255",
		"192.0.2.1 trailer": "192.0.2.1", // inet_aton stops at white space
		"192.0.2.1\t":       "192.0.2.1",
	}
	for in, want := range ok {
		a, good := ParseIPv4(in)
		if assert.True(t, good, "%q", in) {
			assert.Equal(t, netip.MustParseAddr(want), a, "%q", in)
		}
	}
	for _, in := range []string{
		"", "localhost", "1.2.3.4.", "1.2.3.4.5", "1..2", ".1.2.3", "256.0.0.1", "1.2.3.256", "127.16777216",
		"08.0.0.1", "0x", "0x1g.0.0.1", "4294967296", "1.2.3.4x", "+1.2.3.4", " 1.2.3.4", "1.2.3.4\x00",
		"1.2.3.4\u00a0", "::1", "١.2.3.4", "0xfffffffff", "0x.1.1.1", "00x1.0.0.0", "1.2.3.0x",
	} {
		_, good := ParseIPv4(in)
		assert.False(t, good, "%q", in)
	}
}

func TestHostAddrIPv6(t *testing.T) {
	for _, in := range []string{"::1", "2001:db8::1", "::ffff:192.0.2.1"} {
		_, ok := HostAddr(in)
		assert.True(t, ok, in)
	}
	for _, in := range []string{"fe80::1%eth0", "[::1]", "db.example.com", "::ffff:192.000.002.001"} {
		_, ok := HostAddr(in)
		assert.False(t, ok, in)
	}
}

func TestUseSNI(t *testing.T) {
	for _, h := range []string{"db.example.com", "localhost", "0x7f.0.0.1", "db1"} {
		assert.True(t, UseSNI(h), h)
	}
	for _, h := range []string{"192.0.2.1", "192.000.002.001", "127.1", "3232235777", "::1", "fe80::1%eth0", ""} {
		assert.False(t, UseSNI(h), h)
	}
}

func TestNumericIPv4(t *testing.T) {
	a, ok := NumericIPv4("192.000.002.001")
	assert.True(t, ok)
	assert.Equal(t, "192.0.2.1", a.String())
	_, ok = NumericIPv4("192.0.2.1 trailer")
	assert.False(t, ok, "getaddrinfo refuses what inet_aton only stops at")
	_, ok = NumericIPv4("db.example.com")
	assert.False(t, ok)
}
