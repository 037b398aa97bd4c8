package pgsecure

import (
	"context"
	"fmt"
	"net"
	"strings"

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
	if err != nil || g.direct {
		return nc, err
	}
	return &sslAnswerConn{Conn: nc}, nil
}

// sslAnswerConn checks the first byte the server sends.
type sslAnswerConn struct {
	net.Conn
	checked bool
}

func (c *sslAnswerConn) Read(p []byte) (int, error) {
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
func (c *sslAnswerConn) NetConn() net.Conn { return c.Conn }
