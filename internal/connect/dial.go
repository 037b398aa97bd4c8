package connect

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure/verify"
)

// dialStage wraps a dial function (pgx's, or one a caller set): it dials
// only TCP, resolves the host itself (or uses hostaddr), and returns a
// guardedConn that refuses to send anything but a TLS request first and to
// accept anything but 'S' back.
type dialStage struct {
	policy  *Policy
	resolve pgconn.LookupFunc
	next    pgconn.DialFunc
}

func (d *dialStage) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(network, "tcp") {
		err := &verify.Error{Addr: address, Stage: verify.StageTCP,
			Seen: fmt.Sprintf("network %q is not TCP; pgsecure never uses unix sockets because they cannot carry TLS", network)}
		d.policy.Observer.Refused(ctx, Refusal{Kind: RefusedPlaintext, Host: host, Addr: address, Stage: verify.StageTCP, Err: err})
		return nil, err
	}
	a := &attempt{host: host, started: time.Now(), stage: verify.StageTCP, ctx: ctx, probe: ctx.Value(probeKey{}) != nil}
	d.policy.latest.Store(a)
	addrs := []string{host}
	if ha, ok := d.policy.HostAddrs[host]; ok {
		addrs = []string{ha}
	} else if net.ParseIP(host) == nil {
		if addrs, err = d.resolve(ctx, host); err != nil {
			return nil, err
		}
	}
	ctx = within(ctx)
	var errs []error
	for _, ip := range addrs {
		target := net.JoinHostPort(ip, port)
		if _, _, err := net.SplitHostPort(ip); err == nil {
			target = ip // the resolver returned host:port
		}
		nc, err := d.next(ctx, network, target)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.addr = nc.RemoteAddr().String()
		a.setStage(verify.StageTLSRequest)
		return &guardedConn{Conn: nc, attempt: a, policy: d.policy}, nil
	}
	return nil, errors.Join(errs...)
}

// sslRequest is the 8-byte SSLRequest message.
var sslRequest = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 80877103)

// guardedConn is the TCP connection under TLS. Before TLS it allows exactly
// one exchange: the client's TLS request (or, with direct negotiation, a TLS
// ClientHello) and the server's 'S'. Anything else — a startup message from
// a configuration whose TLS was removed, 'N' from a server with ssl=off, an
// error message — fails the connection before a byte more is sent. It also
// carries the attempt and, while the attempt is connecting, names the stage
// in timeout errors. Once the connection is established it is a
// pass-through: reads, writes, deadlines and errors are the TCP
// connection's, unchanged (pgx interrupts a statement with a deadline and
// must see its own net.Error timeout, or it takes the connection for broken
// and a statement already sent for one safe to retry).
type guardedConn struct {
	net.Conn
	attempt *attempt
	policy  *Policy

	wrote, read bool  // the first write / read was checked
	unwatched   error // the refusal of a startup message sent past the authentication watch
}

func (c *guardedConn) Write(p []byte) (int, error) {
	if !c.wrote && len(p) > 0 {
		c.wrote = true
		switch {
		case c.policy.Direct && p[0] == 0x16: // TLS handshake record: direct negotiation
			c.read = true
			c.attempt.setStage(verify.StageTLSHandshake)
		case !c.policy.Direct && bytes.HasPrefix(p, sslRequest):
		default:
			return 0, c.refuse(&verify.Error{Addr: c.attempt.addr, Stage: verify.StageTLSRequest,
				Seen: "the client was about to send its first message without TLS (the TLS configuration for this host was removed or replaced); nothing was sent"})
		}
	}
	if c.unwatched != nil {
		return 0, c.unwatched
	}
	if !c.attempt.connected.Load() && c.attempt.unwatched() {
		// The handshake was verified, so this is the startup message, and
		// no frontend stage put the authentication watch in front of it:
		// BuildFrontend was replaced after pgsecure installed its stages.
		c.unwatched = c.policy.refuseNotInstalled(c.attempt.ctx, c.attempt.host, &NotInstalledError{Hook: "BuildFrontend", Addr: c.attempt.addr, Replaced: true})
		return 0, c.unwatched
	}
	n, err := c.Conn.Write(p)
	return n, c.stageErr(err)
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.read || len(p) == 0 {
		n, err := c.Conn.Read(p)
		return n, c.stageErr(err)
	}
	n, err := c.Conn.Read(p[:1])
	if n == 0 {
		return n, c.stageErr(err)
	}
	c.read = true
	if p[0] != 'S' {
		seen := fmt.Sprintf("the server answered %q to the TLS request instead of 'S'", p[0])
		switch p[0] {
		case 'N':
			seen = "the server declined TLS (answered 'N' to the SSLRequest): it runs with ssl=off or something in between strips TLS; enable ssl in postgresql.conf"
		case 'E':
			seen = "the server answered the TLS request with an error message: it does not support TLS"
		}
		return 0, c.refuse(&verify.Error{Addr: c.attempt.addr, Stage: verify.StageTLSRequest, Seen: seen})
	}
	c.attempt.setStage(verify.StageTLSHandshake)
	return n, err
}

// refuse reports a plaintext refusal (nothing later in pgx's connect path
// would) and returns err.
func (c *guardedConn) refuse(err error) error {
	c.policy.Observer.Refused(c.attempt.ctx, Refusal{Kind: RefusedPlaintext, Host: c.attempt.host,
		Addr: c.attempt.addr, Stage: c.attempt.Stage(), Err: err})
	return err
}

// NetConn returns the TCP connection.
func (c *guardedConn) NetConn() net.Conn { return c.Conn }

func (c *guardedConn) stageErr(err error) error {
	if err == nil || c.attempt.connected.Load() {
		return err
	}
	return c.attempt.timeoutErr(err)
}

// timeoutErr names host and stage in a timeout, which otherwise reads as a
// bare "i/o timeout" or "context deadline exceeded".
func (a *attempt) timeoutErr(err error) error {
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	var te *TimeoutError
	if errors.As(err, &te) {
		return err
	}
	return &TimeoutError{Host: a.host, Addr: a.addr, Stage: a.Stage(), Elapsed: time.Since(a.started), Err: err}
}
