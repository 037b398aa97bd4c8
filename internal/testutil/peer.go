package testutil

import (
	"net"
	"sync"
	"testing"
	"time"
)

// peerConnTimeout bounds how long a test double serves one connection.
const peerConnTimeout = 30 * time.Second

// Peer is a running test double listening on Addr ("127.0.0.1:PORT"). What it
// records is kept in memory for the test to inspect and is never logged.
type Peer struct {
	Addr string
	Host string
	Port int

	ln     net.Listener
	handle func(net.Conn)
	wg     sync.WaitGroup

	mu         sync.Mutex
	open       map[net.Conn]struct{}
	closed     bool
	conns      int
	wire       []byte
	serverWire []byte
	decrypted  []byte
	startups   []map[string]string
	passwords  []string
}

// Wire returns every byte the clients sent on their TCP connections, exactly as
// an eavesdropper would see it: the startup packets in the clear and, after a
// TLS handshake, TLS records (ciphertext).
func (p *Peer) Wire() []byte { return p.snapshot(&p.wire) }

// ServerWire returns every byte sent back to the clients on their TCP
// connections (recorded by WireTap only).
func (p *Peer) ServerWire() []byte { return p.snapshot(&p.serverWire) }

// Decrypted returns what the clients sent inside TLS, after decryption (empty
// for peers that never complete a TLS handshake).
func (p *Peer) Decrypted() []byte { return p.snapshot(&p.decrypted) }

// Conns returns how many TCP connections the peer has accepted.
func (p *Peer) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

// Startups returns the parameters (user, database, ...) of every
// StartupMessage the peer read itself (not those it only relayed).
func (p *Peer) Startups() []map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]string(nil), p.startups...)
}

// Passwords returns every PasswordMessage the peer obtained by asking for a
// cleartext password: the credentials a hostile server would have stolen.
func (p *Peer) Passwords() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.passwords...)
}

func (p *Peer) snapshot(b *[]byte) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), *b...)
}

func (p *Peer) record(dst *[]byte, b []byte) {
	p.mu.Lock()
	*dst = append(*dst, b...)
	p.mu.Unlock()
}

func (p *Peer) recordStartup(params map[string]string) {
	p.mu.Lock()
	p.startups = append(p.startups, params)
	p.mu.Unlock()
}

func (p *Peer) recordPassword(pw string) {
	p.mu.Lock()
	p.passwords = append(p.passwords, pw)
	p.mu.Unlock()
}

// newPeer listens on 127.0.0.1:0 and serves each connection with handle (which
// gets a connection that records into Wire) until t ends.
func newPeer(t testing.TB, handle func(p *Peer, c net.Conn)) *Peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgsecure/testutil: test peer cannot listen: %v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	p := &Peer{
		Addr: ln.Addr().String(), Host: addr.IP.String(), Port: addr.Port,
		ln: ln, open: map[net.Conn]struct{}{},
	}
	p.handle = func(c net.Conn) { handle(p, c) }
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *Peer) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		p.mu.Lock()
		p.conns++
		p.mu.Unlock()
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			_ = c.SetDeadline(time.Now().Add(peerConnTimeout))
			p.handle(&recordingConn{Conn: c, onRead: func(b []byte) { p.record(&p.wire, b) }})
		}()
	}
}

// track registers c so close can interrupt it; it closes c and reports false
// when the peer is already closed.
func (p *Peer) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.open[c] = struct{}{}
	return true
}

func (p *Peer) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.open, c)
	p.mu.Unlock()
	_ = c.Close()
}

// close stops accepting, closes every open connection and waits for the
// handlers to return.
func (p *Peer) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.open {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

// dialUpstream connects to a relay target and registers the connection so
// that close interrupts it.
func (p *Peer) dialUpstream(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if !p.track(c) {
		return nil, net.ErrClosed
	}
	_ = c.SetDeadline(time.Now().Add(peerConnTimeout))
	return c, nil
}

// recordingConn passes every successfully read byte to onRead.
type recordingConn struct {
	net.Conn
	onRead func([]byte)
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.onRead(b[:n])
	}
	return n, err
}
