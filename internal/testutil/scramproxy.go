package testutil

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// SCRAM mechanism names and GS2 headers (RFC 5802, RFC 5929) as PostgreSQL
// and pgx spell them.
const (
	SCRAMSHA256     = "SCRAM-SHA-256"
	SCRAMSHA256Plus = "SCRAM-SHA-256-PLUS"
	// GS2Bound is the header of a client binding to tls-server-end-point.
	GS2Bound = "p=tls-server-end-point,,"
	// GS2Capable ("y") says the client could bind but the server did not
	// offer SCRAM-SHA-256-PLUS; GS2None ("n") that the client cannot bind.
	GS2Capable = "y,,"
	GS2None    = "n,,"
)

// SCRAMProxyOptions says where a SCRAMProxy relays the connections it
// accepts and how it rewrites the SCRAM exchange on the way. With no
// rewriting field set it relays unchanged.
type SCRAMProxyOptions struct {
	// Upstream is the address of the real PostgreSQL server.
	Upstream string
	// UpstreamTLS, when not nil, makes the proxy open its own TLS session
	// to Upstream (SSLRequest, then a handshake that must verify the
	// server: InsecureSkipVerify is refused). nil relays to Upstream in
	// plaintext.
	UpstreamTLS *tls.Config
	// Passthrough relays the TCP stream unchanged without terminating TLS:
	// the honest path, TLS end to end between client and server. The
	// fields below are then ignored.
	Passthrough bool

	// StripPlus removes SCRAM-SHA-256-PLUS from the mechanisms the server
	// offers in AuthenticationSASL.
	StripPlus bool
	// AdvertisePlus adds SCRAM-SHA-256-PLUS to them when it is missing.
	AdvertisePlus bool
	// Mechanism, when set, replaces the mechanism the client chose in its
	// SASLInitialResponse.
	Mechanism string
	// GS2Header, when set, replaces the GS2 header of the client-first
	// message (such as "y,," by "n,,").
	GS2Header string
	// Binding, when set, replaces the c= attribute (the base64
	// channel-binding input) of the client-final message (such as "eSws" by
	// "biws").
	Binding string
	// BindUpstream replaces the c= attribute by the one the upstream server
	// expects of a bound client: base64 of "p=tls-server-end-point,," and the
	// hash of the upstream server's own certificate. Requires UpstreamTLS.
	BindUpstream bool
}

// SCRAMExchange is what a SCRAMProxy saw of one connection's SCRAM exchange
// and what it forwarded instead. It holds no password and no proof.
type SCRAMExchange struct {
	// Offered are the mechanisms the server offered; Advertised those
	// forwarded to the client.
	Offered, Advertised []string
	// Chosen is the mechanism the client chose; Forwarded what the server got.
	Chosen, Forwarded string
	// GS2 is the client's GS2 header; GS2Forwarded what the server got.
	GS2, GS2Forwarded string
	// Binding is the client-final c= attribute; BindingForwarded what the
	// server got.
	Binding, BindingForwarded string
	// Outcome is "ok" when the server sent AuthenticationOk, the SQLSTATE
	// of its ErrorResponse when it refused, "" when neither arrived.
	// Message is the server's error message.
	Outcome, Message string
}

// SCRAMProxy is a test double standing in for a hostile relay that no real
// server would be: it terminates TLS with a certificate the client trusts
// (issued by the pinned CA for the right host name), connects to a real
// PostgreSQL server and relays the protocol, rewriting the SCRAM exchange
// as its options say (see SCRAMProxyOptions), to make a client believe the
// server terminates TLS itself or that channel binding is not available.
// Decrypted holds what the clients sent inside TLS; Exchanges what the
// proxy saw and changed.
type SCRAMProxy struct {
	*Peer

	mu        sync.Mutex
	opts      SCRAMProxyOptions
	exchanges []*SCRAMExchange
}

// StartSCRAMProxy starts a SCRAMProxy presenting cert to clients and
// relaying as o says; it stops when t ends.
func StartSCRAMProxy(t testing.TB, cert tls.Certificate, o SCRAMProxyOptions) *SCRAMProxy {
	t.Helper()
	s := &SCRAMProxy{}
	s.Reroute(t, o)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	s.Peer = newPeer(t, func(p *Peer, c net.Conn) { s.handle(p, c, cfg) })
	return s
}

// Reroute changes how connections accepted from now on are relayed;
// connections already open keep their options.
func (s *SCRAMProxy) Reroute(t testing.TB, o SCRAMProxyOptions) {
	t.Helper()
	if o.UpstreamTLS != nil && o.UpstreamTLS.InsecureSkipVerify {
		t.Fatalf("pgsecure/testutil: SCRAMProxy must verify the upstream server: InsecureSkipVerify is refused")
	}
	if o.BindUpstream && o.UpstreamTLS == nil {
		t.Fatalf("pgsecure/testutil: SCRAMProxy BindUpstream needs a TLS upstream")
	}
	s.mu.Lock()
	s.opts = o
	s.mu.Unlock()
}

// Exchanges returns a copy of what the proxy saw of each SCRAM exchange it
// relayed, in the order the connections were accepted.
func (s *SCRAMProxy) Exchanges() []SCRAMExchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SCRAMExchange, 0, len(s.exchanges))
	for _, e := range s.exchanges {
		c := *e
		c.Offered, c.Advertised = slices.Clone(e.Offered), slices.Clone(e.Advertised)
		out = append(out, c)
	}
	return out
}

// record applies fn to ex under the proxy's lock.
func (s *SCRAMProxy) record(ex *SCRAMExchange, fn func(*SCRAMExchange)) {
	s.mu.Lock()
	fn(ex)
	s.mu.Unlock()
}

func (s *SCRAMProxy) handle(p *Peer, c net.Conn, cfg *tls.Config) {
	s.mu.Lock()
	o := s.opts
	s.mu.Unlock()
	if o.Passthrough {
		if up, err := p.dialUpstream(o.Upstream); err == nil {
			defer p.untrack(up)
			p.relay(c, up)
		}
		return
	}
	dc, ok := p.negotiateTLS(c, cfg)
	if !ok {
		return
	}
	up, err := p.dialUpstream(o.Upstream)
	if err != nil {
		return
	}
	defer p.untrack(up)
	var upstreamCert *x509.Certificate
	if o.UpstreamTLS != nil {
		tc, err := startTLSClient(up, o.UpstreamTLS.Clone())
		if err != nil {
			return
		}
		up, upstreamCert = tc, tc.ConnectionState().PeerCertificates[0]
	}
	ex := &SCRAMExchange{}
	s.mu.Lock()
	s.exchanges = append(s.exchanges, ex)
	s.mu.Unlock()
	r := &scramRewriter{proxy: s, opts: o, ex: ex, upstreamCert: upstreamCert}
	var wg sync.WaitGroup
	stop := func() { _ = dc.Close(); _ = up.Close() }
	wg.Add(2)
	go func() { defer wg.Done(); defer stop(); r.clientToServer(dc, up) }()
	go func() { defer wg.Done(); defer stop(); r.serverToClient(up, dc) }()
	wg.Wait()
}

// scramRewriter relays one connection message by message, rewriting the
// SCRAM messages. Each observation is recorded before the (rewritten)
// message is forwarded, so a client that has seen the answer can read it.
type scramRewriter struct {
	proxy        *SCRAMProxy
	opts         SCRAMProxyOptions
	ex           *SCRAMExchange
	upstreamCert *x509.Certificate
	sasl         atomic.Bool // the server asked for SASL authentication
}

func (r *scramRewriter) clientToServer(client, server net.Conn) {
	code, payload, err := readStartup(client)
	if err != nil {
		return
	}
	if _, err := server.Write(startupPacket(code, payload)); err != nil {
		return
	}
	responses := 0
	for {
		typ, body, err := readMessage(client)
		if err != nil {
			return
		}
		if typ == 'p' && r.sasl.Load() {
			responses++
			switch responses {
			case 1:
				body, err = r.initialResponse(body)
			case 2:
				body, err = r.finalResponse(body)
			}
			if err != nil {
				return
			}
		}
		if _, err := server.Write(message(typ, body)); err != nil {
			return
		}
	}
}

func (r *scramRewriter) serverToClient(server, client net.Conn) {
	for {
		typ, body, err := readMessage(server)
		if err != nil {
			return
		}
		switch {
		case typ == 'R' && len(body) >= 4 && binary.BigEndian.Uint32(body) == 10:
			r.sasl.Store(true)
			body = r.mechanisms(body)
		case typ == 'R' && len(body) == 4 && binary.BigEndian.Uint32(body) == 0:
			r.proxy.record(r.ex, func(ex *SCRAMExchange) {
				if ex.Outcome == "" {
					ex.Outcome = "ok"
				}
			})
		case typ == 'E':
			code, msg := errorFields(body)
			r.proxy.record(r.ex, func(ex *SCRAMExchange) {
				if ex.Outcome == "" {
					ex.Outcome, ex.Message = code, msg
				}
			})
		}
		if _, err := client.Write(message(typ, body)); err != nil {
			return
		}
	}
}

// mechanisms rewrites an AuthenticationSASL body (code 10, then
// NUL-terminated names, then a NUL).
func (r *scramRewriter) mechanisms(body []byte) []byte {
	var offered []string
	for _, m := range bytes.Split(body[4:], []byte{0}) {
		if len(m) > 0 {
			offered = append(offered, string(m))
		}
	}
	advertised := slices.Clone(offered)
	if r.opts.StripPlus {
		advertised = slices.DeleteFunc(advertised, func(m string) bool { return m == SCRAMSHA256Plus })
	}
	if r.opts.AdvertisePlus && !slices.Contains(advertised, SCRAMSHA256Plus) {
		advertised = append([]string{SCRAMSHA256Plus}, advertised...)
	}
	r.proxy.record(r.ex, func(ex *SCRAMExchange) { ex.Offered, ex.Advertised = offered, slices.Clone(advertised) })
	out := binary.BigEndian.AppendUint32(nil, 10)
	for _, m := range advertised {
		out = append(append(out, m...), 0)
	}
	return append(out, 0)
}

// initialResponse rewrites a SASLInitialResponse body: mechanism NUL,
// int32 length, client-first message (GS2 header, then the bare message).
func (r *scramRewriter) initialResponse(body []byte) ([]byte, error) {
	end := bytes.IndexByte(body, 0)
	if end < 0 || len(body) < end+5 {
		return nil, errors.New("malformed SASLInitialResponse")
	}
	mech, data := string(body[:end]), body[end+5:]
	header, bare, ok := splitGS2(data)
	if !ok {
		return nil, errors.New("client-first message without a GS2 header")
	}
	fwdMech, fwdHeader := cmp.Or(r.opts.Mechanism, mech), cmp.Or(r.opts.GS2Header, header)
	r.proxy.record(r.ex, func(ex *SCRAMExchange) {
		ex.Chosen, ex.Forwarded, ex.GS2, ex.GS2Forwarded = mech, fwdMech, header, fwdHeader
	})
	first := append([]byte(fwdHeader), bare...)
	out := append([]byte(fwdMech), 0)
	out = binary.BigEndian.AppendUint32(out, uint32(len(first)))
	return append(out, first...), nil
}

// finalResponse rewrites the c= attribute of a client-final message
// ("c=...,r=...,p=...").
func (r *scramRewriter) finalResponse(body []byte) ([]byte, error) {
	attr, rest, ok := bytes.Cut(body, []byte{','})
	if !ok || !bytes.HasPrefix(attr, []byte("c=")) {
		return nil, errors.New("client-final message without a c= attribute")
	}
	binding := string(attr[2:])
	forwarded := cmp.Or(r.opts.Binding, binding)
	if r.opts.BindUpstream {
		hash, err := endPointHash(r.upstreamCert)
		if err != nil {
			return nil, err
		}
		forwarded = base64.StdEncoding.EncodeToString(append([]byte(GS2Bound), hash...))
	}
	r.proxy.record(r.ex, func(ex *SCRAMExchange) { ex.Binding, ex.BindingForwarded = binding, forwarded })
	return fmt.Appendf(nil, "c=%s,%s", forwarded, rest), nil
}

// splitGS2 splits a client-first message after its GS2 header
// (cbind-flag "," [authzid] ",").
func splitGS2(data []byte) (header string, bare []byte, ok bool) {
	first := bytes.IndexByte(data, ',')
	if first < 0 {
		return "", nil, false
	}
	second := bytes.IndexByte(data[first+1:], ',')
	if second < 0 {
		return "", nil, false
	}
	n := first + 1 + second + 1
	return string(data[:n]), data[n:], true
}

// endPointHash is the tls-server-end-point channel binding of cert (RFC
// 5929 section 4.1): its hash with the signature's hash function, SHA-256
// for MD5 and SHA-1.
func endPointHash(cert *x509.Certificate) ([]byte, error) {
	var d hash.Hash
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256:
		d = sha256.New()
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		d = sha512.New384()
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		d = sha512.New()
	default:
		return nil, fmt.Errorf("tls-server-end-point is undefined for %v", cert.SignatureAlgorithm)
	}
	d.Write(cert.Raw)
	return d.Sum(nil), nil
}

// errorFields returns the SQLSTATE (C) and message (M) of an ErrorResponse
// body.
func errorFields(body []byte) (code, msg string) {
	for _, f := range bytes.Split(body, []byte{0}) {
		if len(f) > 1 && f[0] == 'C' {
			code = string(f[1:])
		} else if len(f) > 1 && f[0] == 'M' {
			msg = string(f[1:])
		}
	}
	return code, msg
}

// startupPacket encodes an untyped startup-phase packet.
func startupPacket(code uint32, payload []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
	out = binary.BigEndian.AppendUint32(out, code)
	return append(out, payload...)
}
