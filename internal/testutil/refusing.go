package testutil

import (
	"sync"
	"syscall"
	"testing"
)

// RefusingPort returns a loopback TCP port that refuses connections
// (ECONNREFUSED) for the rest of the test: a socket is bound to it but never
// listens. Unlike a port whose listener was closed, it cannot be handed to a
// server of a test running in parallel meanwhile.
func RefusingPort(t testing.TB) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("testutil: socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("testutil: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("testutil: getsockname: %v", err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

var processPort struct {
	once sync.Once
	port int
	err  error
}

// ProcessRefusingPort is RefusingPort for the life of the test binary, for
// code without a testing.TB at hand; its socket is never closed.
func ProcessRefusingPort() int {
	processPort.once.Do(func() {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err == nil {
			err = syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
		}
		var sa syscall.Sockaddr
		if err == nil {
			sa, err = syscall.Getsockname(fd)
		}
		if err != nil {
			processPort.err = err
			return
		}
		processPort.port = sa.(*syscall.SockaddrInet4).Port
	})
	if processPort.err != nil {
		panic("testutil: cannot reserve a refusing port: " + processPort.err.Error())
	}
	return processPort.port
}
