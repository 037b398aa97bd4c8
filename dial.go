package pgsecure

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/verify"
)

// guardDial wraps a dial function so that:
//   - only TCP is ever dialled (no unix sockets, whatever the host says);
//   - the server's one-byte answer to the SSLRequest must be 'S'. Anything
//     else ('N' from a server with ssl=off, an error message, a plaintext
//     server that does not understand the request) fails the connection with
//     an error wrapping ErrNotEncrypted before pgx can say anything more.
//     With direct TLS negotiation there is no SSLRequest: the TLS handshake
//     itself is the first exchange and fails against a plaintext server.
func guardDial(next pgconn.DialFunc, direct bool) pgconn.DialFunc {
	g := &dialGuard{next: next, direct: direct}
	return g.dial
}

type dialGuard struct {
	next   pgconn.DialFunc
	direct bool
}

func (g *dialGuard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if !strings.HasPrefix(network, "tcp") {
		return nil, &verify.Error{Addr: addr, Stage: "before connecting",
			Seen: fmt.Sprintf("network %q is not TCP; pgsecure never uses unix sockets because they cannot carry TLS", network)}
	}
	nc, err := g.next(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: nc, checked: g.direct}, nil
}

// guardedConn is the TCP connection under TLS. Before the handshake it
// checks the first byte the server sends (the SSLRequest answer); it also
// carries the connection's authentication watch from AfterNetConnect to
// BuildFrontend and ValidateConnect, so that state lives and dies with the
// connection.
type guardedConn struct {
	net.Conn
	checked bool // the SSLRequest answer was checked (or there is none: direct TLS)
	watch   atomic.Pointer[authWatch]
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.checked || len(p) == 0 {
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p[:1])
	if n == 0 {
		return n, err
	}
	c.checked = true
	if p[0] != 'S' {
		seen := fmt.Sprintf("the server answered %q to the TLS request instead of 'S'", p[0])
		switch p[0] {
		case 'N':
			seen = "the server declined TLS (answered 'N' to the SSLRequest): it runs with ssl=off or something in between strips TLS; enable ssl in postgresql.conf"
		case 'E':
			seen = "the server answered the TLS request with an error message: it does not support TLS"
		}
		return 0, &verify.Error{Addr: c.RemoteAddr().String(), Stage: "before authentication", Seen: seen}
	}
	return n, err
}

// NetConn returns the wrapped connection.
func (c *guardedConn) NetConn() net.Conn { return c.Conn }

// guardedUnder finds pgsecure's guardedConn under nc (through *tls.Conn and
// wrappers that expose NetConn), or nil.
func guardedUnder(nc any) *guardedConn {
	for range 6 {
		switch c := nc.(type) {
		case *guardedConn:
			return c
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}
