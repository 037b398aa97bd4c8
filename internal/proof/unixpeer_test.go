package proof

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// unixListener is a test double standing in for a PostgreSQL unix socket (a
// real server's socket would answer; this one only records): it listens at
// dir/.s.PGSQL.5432 and keeps every byte a client sends, so a test can show
// that nothing was sent to it.
type unixListener struct {
	dir string

	mu   sync.Mutex
	n    int
	data []byte
}

func listenUnix(t *testing.T) *unixListener {
	u := &unixListener{dir: t.TempDir()}
	ln, err := net.Listen("unix", filepath.Join(u.dir, ".s.PGSQL.5432"))
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.n++
			u.mu.Unlock()
			b, _ := io.ReadAll(io.LimitReader(c, 1<<16))
			_ = c.Close()
			u.mu.Lock()
			u.data = append(u.data, b...)
			u.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return u
}

func (u *unixListener) conns() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n
}

func (u *unixListener) bytes() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]byte(nil), u.data...)
}
