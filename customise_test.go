package pgsecure_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/connect"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostilePeers are the three peers every customisation is tried against:
// a TLS-terminating proxy holding a valid certificate for the host in front
// of a plaintext server (only the server-side proof catches it), an
// impostor holding a certificate of the pinned CA issued for another host
// (only the host name check catches it; it relays to the real server, so an
// unchecked client would complete SCRAM through it), and a peer answering
// 'N' to the TLS request.
type hostilePeers struct {
	pki                   *testutil.PKI
	proxy, impostor, sayN *testutil.Peer
}

func startHostilePeers(t *testing.T) hostilePeers {
	pki := testutil.NewPKI(t)
	plain := testutil.StartPostgres(t, testutil.PGOptions{SSLOff: true})
	plain.CreateRole(t, appUser, appPassword)
	_, _, good := pki.Server(t, testutil.LocalServerOptions())
	goodCert, err := good.TLSCertificate()
	require.NoError(t, err)

	real := pki.StartPostgres(t, testutil.PGOptions{ServerCertPEM: good.CertPEM, ServerKeyPEM: good.KeyPEM})
	real.CreateRole(t, appUser, appPassword)
	_, _, other := pki.Server(t, certgen.Options{CommonName: "other.example.com", DNSNames: []string{"other.example.com"}})
	otherCert, err := other.TLSCertificate()
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(pki.CA.Cert)
	return hostilePeers{
		pki:      pki,
		proxy:    testutil.TLSPeer(t, goodCert, plain.Addr(), nil),
		impostor: testutil.TLSPeer(t, otherCert, real.Addr(), &tls.Config{ServerName: "localhost", RootCAs: roots}),
		sayN:     testutil.AnswerN(t),
	}
}

// customisation changes what Builder.Config returned, the way a caller
// might before pgxpool.NewWithConfig.
type customisation struct {
	name  string
	apply func(cfg *pgxpool.Config, peerPort uint16)
}

var customisations = []customisation{
	{"none", func(*pgxpool.Config, uint16) {}},
	{"DialFunc", func(cfg *pgxpool.Config, _ uint16) {
		d := &net.Dialer{}
		cfg.ConnConfig.DialFunc = d.DialContext
	}},
	{"AfterNetConnect", func(cfg *pgxpool.Config, _ uint16) {
		cfg.ConnConfig.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) { return nc, nil }
	}},
	{"ValidateConnect", func(cfg *pgxpool.Config, _ uint16) {
		cfg.ConnConfig.ValidateConnect = pgconn.ValidateConnectTargetSessionAttrsReadWrite
	}},
	{"TLSConfig nil", func(cfg *pgxpool.Config, _ uint16) { cfg.ConnConfig.TLSConfig = nil }},
	{"TLSConfig swapped", func(cfg *pgxpool.Config, _ uint16) {
		cfg.ConnConfig.TLSConfig = &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}
	}},
	{"InsecureSkipVerify in place", func(cfg *pgxpool.Config, _ uint16) {
		cfg.ConnConfig.TLSConfig.VerifyConnection = nil // pgsecure's config skips Go's check: this leaves none
	}},
	{"AfterNetConnect and TLSConfig nil", func(cfg *pgxpool.Config, _ uint16) {
		cfg.ConnConfig.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) { return nc, nil }
		cfg.ConnConfig.TLSConfig = nil
	}},
	{"Fallbacks added (no TLS)", func(cfg *pgxpool.Config, port uint16) {
		cfg.ConnConfig.Port = closedPort()
		cfg.ConnConfig.Fallbacks = append(cfg.ConnConfig.Fallbacks, &pgconn.FallbackConfig{Host: "localhost", Port: port})
	}},
	{"Fallbacks added (own TLS)", func(cfg *pgxpool.Config, port uint16) {
		cfg.ConnConfig.Port = closedPort()
		cfg.ConnConfig.Fallbacks = append(cfg.ConnConfig.Fallbacks, &pgconn.FallbackConfig{Host: "localhost", Port: port,
			TLSConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}})
	}},
}

// closedPort is a TCP port that refuses connections (reserved for the test
// binary's life, so no server of a parallel test can be given it).
func closedPort() uint16 { return uint16(testutil.ProcessRefusingPort()) }

// TestCustomisationsCannotUnhookChecks: every documented customisation of
// the configuration Config returns, with the pool's BeforeConnect kept or
// replaced by the caller's, against each hostile peer: the connection is
// refused (or the weakening neutralised and the peer then refused), and
// neither the password nor a startup message crosses in cleartext; the
// impostor and the 'N' peer get no startup message at all.
func TestCustomisationsCannotUnhookChecks(t *testing.T) {
	t.Parallel()
	peers := startHostilePeers(t)
	ctx := ctxT(t)
	for _, replaceBefore := range []bool{false, true} {
		for _, c := range customisations {
			for _, peer := range []struct {
				name string
				p    *testutil.Peer
			}{{"TLS-terminating proxy", peers.proxy}, {"impostor for another host", peers.impostor}, {"'N' peer", peers.sayN}} {
				name := fmt.Sprintf("BeforeConnect replaced=%t/%s/%s", replaceBefore, c.name, peer.name)
				t.Run(name, func(t *testing.T) {
					wire, decrypted := len(peer.p.Wire()), len(peer.p.Decrypted())
					cfg, err := pgsecure.NewBuilder(peerDSN(peer.p, "localhost")).RootCAFile(peers.pki.CAFile).Config(ctx)
					require.NoError(t, err)
					c.apply(cfg, uint16(peer.p.Port))
					if replaceBefore {
						cfg.BeforeConnect = func(context.Context, *pgx.ConnConfig) error { return nil }
					}
					pool, err := pgxpool.NewWithConfig(ctx, cfg)
					require.NoError(t, err)
					defer pool.Close()
					err = pool.Ping(ctx)
					require.Error(t, err, "the hostile peer was accepted")
					refused := pgsecure.ErrNotEncrypted
					if replaceBefore {
						refused = pgsecure.ErrInsecureConfig // a tripwire: the pipeline was not installed
					}
					if !replaceBefore && (c.name == "TLSConfig nil" || c.name == "TLSConfig swapped" || c.name == "AfterNetConnect and TLSConfig nil" ||
						c.name == "Fallbacks added (no TLS)") {
						refused = pgsecure.ErrInsecureConfig // BeforeConnect's re-check names the change
					}
					if replaceBefore && c.name == "DialFunc" && peer.p == peers.sayN {
						// No pgsecure code runs between the caller's dial and pgx's own
						// TLS request: pgx refuses 'N' itself ("server refused TLS
						// connection") and sends nothing more.
						refused = nil
					}
					if c.name == "InsecureSkipVerify in place" || c.name == "Fallbacks added (own TLS)" {
						refused = nil // neutralised: the peer is then refused by whichever check fits it
					}
					if refused != nil {
						assert.ErrorIs(t, err, refused)
					} else {
						assert.True(t, isRefusal(err), "refused by a pgsecure check: %v", err)
					}
					assert.NotContains(t, err.Error(), appPassword)
					newWire, newDecrypted := peer.p.Wire()[wire:], peer.p.Decrypted()[decrypted:]
					assert.False(t, bytes.Contains(newWire, []byte(appPassword)), "password on the wire")
					assert.False(t, bytes.Contains(newDecrypted, []byte(appPassword)), "password given to the peer")
					assert.False(t, bytes.Contains(newWire, []byte("user\x00")), "a startup message crossed in cleartext")
					if peer.p != peers.proxy {
						assert.False(t, bytes.Contains(newDecrypted, []byte("user\x00")), "the %s received a startup message", peer.name)
						assert.False(t, bytes.Contains(newDecrypted, []byte("SCRAM-SHA-256")), "the %s received a SCRAM message", peer.name)
					}
				})
			}
		}
	}
}

func isRefusal(err error) bool {
	for _, s := range []error{pgsecure.ErrNotEncrypted, pgsecure.ErrInsecureConfig, pgsecure.ErrUntrustedServer} {
		if errorsIs(err, s) {
			return true
		}
	}
	return strings.Contains(err.Error(), "server refused TLS connection") // pgx's own refusal of 'N'
}

// TestConfigurePoolInstallsLast: hooks set through ConfigurePool (a
// replaced BeforeConnect, ValidateConnect, DialFunc, AfterNetConnect) run,
// after pgsecure's checks, and the TLS-terminating proxy is still refused.
func TestConfigurePoolInstallsLast(t *testing.T) {
	t.Parallel()
	peers := startHostilePeers(t)
	ctx := ctxT(t)
	var before, dialled, netHook, validated atomic.Int32
	configure := func(cfg *pgxpool.Config) {
		cfg.BeforeConnect = func(context.Context, *pgx.ConnConfig) error { before.Add(1); return nil }
		d := &net.Dialer{}
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialled.Add(1)
			return d.DialContext(ctx, network, addr)
		}
		cfg.ConnConfig.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) {
			netHook.Add(1)
			return nc, nil
		}
		cfg.ConnConfig.ValidateConnect = func(_ context.Context, pgConn *pgconn.PgConn) error {
			_, verified := connect.ReportOf(pgConn)
			if !verified {
				return fmt.Errorf("ValidateConnect ran before pgsecure's server-side proof")
			}
			validated.Add(1)
			return nil
		}
	}
	_, err := pgsecure.NewBuilder(peerDSN(peers.proxy, "localhost")).RootCAFile(peers.pki.CAFile).ConfigurePool(configure).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Contains(t, err.Error(), "ssl=false")
	assert.Equal(t, int32(1), before.Load(), "the caller's BeforeConnect ran")
	assert.Equal(t, int32(1), dialled.Load(), "the caller's DialFunc ran, under pgsecure's dial stage")
	assert.Equal(t, int32(1), netHook.Load(), "the caller's AfterNetConnect ran, after the local check")
	assert.Zero(t, validated.Load(), "the caller's ValidateConnect did not run on a refused connection")

	pg, pki := server(t, testutil.LocalServerOptions())
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).ConfigurePool(configure).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	assert.Equal(t, int32(1), validated.Load(), "the caller's ValidateConnect ran after the proof")

	_, err = pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).ConfigurePool(func(cfg *pgxpool.Config) {
		cfg.ConnConfig.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
	assert.Contains(t, err.Error(), "ConfigurePool")
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// afterPgsecure makes cfg's BeforeConnect run pgsecure's and then change:
// a caller's hook wrapped around pgsecure's, which runs after its checks
// and after it installed the pipeline on the connection's copy.
func afterPgsecure(cfg *pgxpool.Config, change func(cc *pgx.ConnConfig)) {
	installed := cfg.BeforeConnect
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if err := installed(ctx, cc); err != nil {
			return err
		}
		change(cc)
		return nil
	}
}
