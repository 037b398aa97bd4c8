package testutil

import (
	"net"
	"strconv"
	"testing"
)

// SilentServer returns the address ("127.0.0.1:port") of a test double for
// a host that accepts TCP connections and never answers (a hung server or a
// black-holing middlebox), which a real PostgreSQL cannot be made to do on
// demand. Its connections are closed when the test ends.
func SilentServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return l.Addr().String()
}

// SilentPort is SilentServer's port.
func SilentPort(t testing.TB) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(SilentServer(t))
	n, _ := strconv.Atoi(p)
	return n
}
