package verify

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/pgsecure/pgsecure/internal/x509check"
)

// Report describes one verified connection: what the client saw of the TLS
// session, how the server proved that it terminates TLS itself (Proof), and,
// when the server was queried, what it said. It holds no secrets and may be
// logged as is.
type Report struct {
	// Proof is how the server-side check was made: ProofChannelBinding or
	// ProofServerQuery.
	Proof Proof
	// Addr is the server's network address (ip:port) as dialled.
	Addr string
	// ServerName is the host name the certificate was checked against.
	ServerName string
	// TLSVersion is the negotiated version in PostgreSQL's spelling
	// ("TLSv1.2", "TLSv1.3").
	TLSVersion string
	// CipherSuite is the negotiated suite in Go's (IANA) spelling.
	CipherSuite string
	// ALPN is the negotiated application protocol ("" when none).
	ALPN string
	// ServerChain is the certificate chain the server presented, leaf first.
	ServerChain []Certificate
	// ClientCertificate is the certificate this client presented, if any.
	ClientCertificate *Certificate
	// Server is the server's own view of the connection (its pg_stat_ssl
	// row). It is filled only when Proof is ProofServerQuery: channel
	// binding proves the same without asking (see ProofChannelBinding).
	Server ServerSSL
	// AuthMethod is how the server authenticated the client (AuthSCRAM,
	// AuthPassword, ...; "" when not known).
	AuthMethod AuthMethod
	// SASLMechanism is the SASL mechanism used, if any; "SCRAM-SHA-256-PLUS"
	// means the authentication was bound to this TLS channel.
	SASLMechanism string
	// BackendPID is the server process id of this connection.
	BackendPID uint32
	// VerifiedAt is when the server-side check completed.
	VerifiedAt time.Time
	// Pooler is non-empty when the peer is a connection pooler or proxy
	// (such as PgBouncer) rather than the server, and says how that was
	// recognised. The TLS fields and ServerChain then describe the client's
	// hop to the pooler, Server (pg_stat_ssl) and BackendPID the pooler's
	// connection to the server; whether the pooler verified the server's
	// certificate is not visible to the client.
	Pooler string
}

// Proof is how the server showed that it terminates the TLS connection the
// client verified. Its values are ProofChannelBinding and ProofServerQuery;
// they print as "channel binding" and "server query".
type Proof string

// Proofs.
const (
	// ProofChannelBinding: authentication completed with
	// SCRAM-SHA-256-PLUS. PostgreSQL offers PLUS only on a backend whose own
	// connection is TLS and checks the client's binding (the hash of the
	// certificate the client verified) against its own certificate inside
	// the proof both sides sign. A relay that re-terminates TLS, even with a
	// trusted certificate, fails it. The report then carries no server-side
	// row (Server is empty): cipher, bits and the server-observed client DN
	// are not known.
	ProofChannelBinding Proof = "channel binding"
	// ProofServerQuery: the server was asked for its view of this backend
	// (pg_stat_get_activity for its pid): ssl must be true and its TLS
	// version must equal the client's. Used when channel binding did not
	// happen (certificate authentication, a server that does not offer PLUS,
	// a hook that hides the TLS connection), for Build's startup
	// connection, and on every connection with
	// Builder.QueryServerEveryConnection.
	//
	// Neither proof holds against a party that has the server's private
	// key: it can terminate TLS and run PostgreSQL itself.
	ProofServerQuery Proof = "server query"
)

// AuthMethod is an authentication method a server may ask for, spelled as
// libpq's require_auth spells it: the constants' values are the words
// require_auth accepts.
type AuthMethod string

// Authentication methods.
const (
	AuthSCRAM    AuthMethod = "scram-sha-256"
	AuthMD5      AuthMethod = "md5"
	AuthPassword AuthMethod = "password"
	AuthNone     AuthMethod = "none"
	AuthGSS      AuthMethod = "gss"
	AuthSSPI     AuthMethod = "sspi"
	AuthOAuth    AuthMethod = "oauth"
)

// Certificate is the loggable summary of an X.509 certificate.
type Certificate struct {
	Subject      string
	Issuer       string
	DNSNames     []string
	IPAddresses  []string
	SerialNumber string
	NotBefore    time.Time
	NotAfter     time.Time
	// SPKIPin is base64(SHA-256(SubjectPublicKeyInfo)), the value pinned by
	// public-key pinning (the same format as HPKP and curl's --pinnedpubkey).
	SPKIPin string
}

// ServerSSL is the row of pg_stat_ssl for this connection's backend.
type ServerSSL struct {
	SSL          bool
	Version      string
	Cipher       string
	Bits         int
	ClientDN     string
	ClientSerial string
	IssuerDN     string
}

// Describe summarises a certificate.
func Describe(c *x509.Certificate) Certificate {
	ips := make([]string, 0, len(c.IPAddresses))
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	return Certificate{
		Subject:      c.Subject.String(),
		Issuer:       c.Issuer.String(),
		DNSNames:     append([]string(nil), c.DNSNames...),
		IPAddresses:  ips,
		SerialNumber: c.SerialNumber.String(),
		NotBefore:    c.NotBefore,
		NotAfter:     c.NotAfter,
		SPKIPin:      x509check.SPKIPin(c),
	}
}

// DaysUntilExpiry is the number of whole days from now until NotAfter
// (negative once expired).
func (c Certificate) DaysUntilExpiry(now time.Time) int {
	return int(math.Floor(c.NotAfter.Sub(now).Hours() / 24))
}

// ChannelBound reports whether SCRAM authentication was bound to the TLS
// channel (SCRAM-SHA-256-PLUS), which defeats a relay even one holding a
// certificate the client trusts.
func (r Report) ChannelBound() bool { return strings.HasSuffix(r.SASLMechanism, "-PLUS") }

// ServerProven reports whether the server proved that it terminates TLS
// itself: by channel binding, or by its own view of the connection
// (ssl=true). Every report pgsecure attaches to a connection satisfies it.
func (r Report) ServerProven() bool {
	return r.Proof == ProofChannelBinding || (r.Proof == ProofServerQuery && r.Server.SSL)
}

// Leaf returns the server's leaf certificate summary.
func (r Report) Leaf() Certificate {
	if len(r.ServerChain) == 0 {
		return Certificate{}
	}
	return r.ServerChain[0]
}

// VersionName spells a crypto/tls version number the way PostgreSQL's
// pg_stat_ssl and ssl_min_protocol_version do.
func VersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("unknown(0x%04x)", v)
}

// String renders the report as a few human-readable lines.
func (r Report) String() string {
	var b strings.Builder
	leaf := r.Leaf()
	fmt.Fprintf(&b, "server:      %s (%s), backend pid %d\n", r.ServerName, r.Addr, r.BackendPID)
	fmt.Fprintf(&b, "client TLS:  %s %s\n", r.TLSVersion, r.CipherSuite)
	if r.Pooler != "" {
		fmt.Fprintf(&b, "pooler:      %s\n", r.Pooler)
	}
	switch r.Proof {
	case ProofServerQuery:
		fmt.Fprintf(&b, "server says: ssl=%t version=%s cipher=%s bits=%d\n", r.Server.SSL, r.Server.Version, r.Server.Cipher, r.Server.Bits)
	case ProofChannelBinding:
		fmt.Fprintf(&b, "server proof: channel binding (SCRAM-SHA-256-PLUS bound to this certificate)\n")
	}
	if r.AuthMethod != "" {
		fmt.Fprintf(&b, "auth:        %s %s (channel binding: %t)\n", r.AuthMethod, r.SASLMechanism, r.ChannelBound())
	}
	fmt.Fprintf(&b, "certificate: %s (issuer %s)\n", leaf.Subject, leaf.Issuer)
	if len(r.ServerChain) == 0 {
		fmt.Fprintf(&b, "  names:     not known (a hook hid the TLS connection from pgsecure)\n")
	} else if len(leaf.DNSNames)+len(leaf.IPAddresses) == 0 {
		fmt.Fprintf(&b, "  names:     none in subjectAltName; matched by Common Name (as libpq does)\n")
	} else {
		fmt.Fprintf(&b, "  names:     DNS %v IP %v\n", leaf.DNSNames, leaf.IPAddresses)
	}
	fmt.Fprintf(&b, "  expires:   %s (%d days)\n", leaf.NotAfter.UTC().Format(time.RFC3339), leaf.DaysUntilExpiry(r.VerifiedAt))
	fmt.Fprintf(&b, "  spki pin:  %s\n", leaf.SPKIPin)
	if r.Server.ClientDN != "" {
		fmt.Fprintf(&b, "client cert: %s (serial %s)\n", r.Server.ClientDN, r.Server.ClientSerial)
	}
	return b.String()
}

// LogValue implements slog.LogValuer with the fields an operator needs.
func (r Report) LogValue() slog.Value {
	leaf := r.Leaf()
	attrs := []slog.Attr{
		slog.String("server_name", r.ServerName),
		slog.String("addr", r.Addr),
		slog.String("tls_version", r.TLSVersion),
		slog.String("cipher", r.CipherSuite),
		slog.String("proof", string(r.Proof)),
		slog.String("cert_subject", leaf.Subject),
		slog.Time("cert_not_after", leaf.NotAfter),
		slog.Int("cert_days_left", leaf.DaysUntilExpiry(r.VerifiedAt)),
		slog.Any("backend_pid", r.BackendPID),
	}
	if r.Proof == ProofServerQuery {
		attrs = append(attrs, slog.Bool("server_ssl", r.Server.SSL), slog.String("server_tls_version", r.Server.Version), slog.Int("bits", r.Server.Bits))
	}
	if r.AuthMethod != "" {
		attrs = append(attrs, slog.String("auth", string(r.AuthMethod)), slog.Bool("channel_binding", r.ChannelBound()))
	}
	if r.Server.ClientDN != "" {
		attrs = append(attrs, slog.String("client_dn", r.Server.ClientDN))
	}
	if r.Pooler != "" {
		attrs = append(attrs, slog.String("pooler", r.Pooler))
	}
	return slog.GroupValue(attrs...)
}
