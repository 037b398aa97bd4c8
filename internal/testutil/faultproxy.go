package testutil

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FaultProxy is a test double standing in for a bad network between client
// and server (no real network misbehaves on demand): a TCP relay on
// 127.0.0.1 to a real PostgreSQL that can delay every chunk it forwards,
// swallow new connections without answering (a black hole), stall the open
// ones (nothing forwarded, nothing closed), and cut every open connection
// at once. It changes no byte.
type FaultProxy struct {
	Port     int
	upstream string
	ln       net.Listener

	latency   atomic.Int64 // time.Duration added before forwarding each chunk
	blackhole atomic.Bool
	stall     atomic.Bool
	closing   atomic.Bool

	mu    sync.Mutex
	open  map[net.Conn]struct{}
	conns int
	wg    sync.WaitGroup
}

// NewFaultProxy starts a relay to upstream, stopped when t ends.
func NewFaultProxy(t testing.TB, upstream string) *FaultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &FaultProxy{Port: ln.Addr().(*net.TCPAddr).Port, upstream: upstream, ln: ln, open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		p.closing.Store(true)
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// SetLatency delays each forwarded chunk, in both directions, by d.
func (p *FaultProxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// SetBlackhole makes new connections hang: accepted, never answered.
func (p *FaultProxy) SetBlackhole(on bool) { p.blackhole.Store(on) }

// SetStall holds every chunk of the open connections (in both directions)
// until it is turned off: a path that silently stops delivering. Combined
// with SetBlackhole it is a full black hole.
func (p *FaultProxy) SetStall(on bool) { p.stall.Store(on) }

// Cut closes every open connection, client and upstream sides.
func (p *FaultProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.open {
		_ = c.Close()
	}
}

// Conns is the number of client connections accepted so far.
func (p *FaultProxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

func (p *FaultProxy) track(c net.Conn) {
	p.mu.Lock()
	p.open[c] = struct{}{}
	p.mu.Unlock()
}

func (p *FaultProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *FaultProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns++
		p.mu.Unlock()
		p.track(c)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			if p.blackhole.Load() {
				_, _ = io.Copy(io.Discard, c) // until the client gives up or Cut
				return
			}
			up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
			if err != nil {
				return
			}
			p.track(up)
			defer p.untrack(up)
			done := make(chan struct{}, 2)
			go p.pipe(up, c, done)
			go p.pipe(c, up, done)
			<-done
			<-done // the first pipe to end closed both sides, so the other ends too
		}()
	}
}

// pipe copies src to dst chunk by chunk, delaying each by the latency.
func (p *FaultProxy) pipe(dst, src net.Conn, done chan<- struct{}) {
	defer func() { _ = dst.Close(); _ = src.Close(); done <- struct{}{} }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.latency.Load()); d > 0 {
				time.Sleep(d)
			}
			for p.stall.Load() && !p.closing.Load() {
				time.Sleep(10 * time.Millisecond)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
