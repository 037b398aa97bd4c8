package pgsecure_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// localPeerCert is a new PKI and a certificate it issued for localhost:
// what a hostile peer holding a trusted certificate presents.
func localPeerCert(t *testing.T) (*testutil.PKI, tls.Certificate) {
	t.Helper()
	pki := testutil.NewPKI(t)
	_, _, pair := pki.Server(t, testutil.LocalServerOptions())
	cert, err := pair.TLSCertificate()
	require.NoError(t, err)
	return pki, cert
}

// countingDial counts the bytes the client reads from the network.
func countingDial(read *atomic.Int64) func(*pgxpool.Config) {
	return func(cfg *pgxpool.Config) {
		d := &net.Dialer{}
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, read: read}, nil
		}
	}
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

// TestPreAuthParameterStatusFloodRefused: a peer with a trusted
// certificate streams ParameterStatus messages before any authentication
// request (a real server sends them only after AuthenticationOk; psql
// refuses the first). The client refuses at the first one, having read a
// bounded number of bytes, with one refusal event.
func TestPreAuthParameterStatusFloodRefused(t *testing.T) {
	t.Parallel()
	pki, cert := localPeerCert(t)
	msg := testutil.Message('S', []byte("application_name\x00"+strings.Repeat("x", 1000)+"\x00"))
	var sent atomic.Int64
	p := testutil.PreAuthPeer(t, cert, func(w io.Writer) error {
		for sent.Load() < 1<<30 {
			n, err := w.Write(msg)
			sent.Add(int64(n))
			if err != nil {
				return err
			}
		}
		return nil
	})
	var read atomic.Int64
	var events eventLog
	_, err := pgsecure.NewBuilder(peerDSN(p, "localhost")).RootCAFile(pki.CAFile).OnEvent(events.add).
		ConfigurePool(countingDial(&read)).Build(ctxT(t))
	require.ErrorIs(t, err, pgsecure.ErrInsecureAuth)
	assert.Contains(t, err.Error(), "ParameterStatus")
	assert.Contains(t, err.Error(), "before authentication")
	t.Logf("the client read %d bytes; the peer had written %d", read.Load(), sent.Load())
	assert.Less(t, read.Load(), int64(1<<20), "the client read a bounded number of bytes")
	assert.Equal(t, []pgsecure.RefusalKind{pgsecure.RefusedAuthMethod}, events.refusals())
	assertNoPasswordLeak(t, p)
}

// TestPreAuthBigNoticeRefused: a NoticeResponse over 1 MiB before a
// cleartext-password request does not make the authentication watch give
// up: the connection is refused with ErrInsecureAuth and one event, and the
// password is not sent.
func TestPreAuthBigNoticeRefused(t *testing.T) {
	t.Parallel()
	pki, cert := localPeerCert(t)
	for _, size := range []int{100, 1<<20 + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			notice := testutil.Message('N', []byte("SNOTICE\x00M"+strings.Repeat("n", size)+"\x00\x00"))
			p := testutil.PreAuthPeer(t, cert, func(w io.Writer) error {
				_, err := w.Write(notice)
				return err
			})
			var events eventLog
			_, err := pgsecure.NewBuilder(peerDSN(p, "localhost")).RootCAFile(pki.CAFile).OnEvent(events.add).Build(ctxT(t))
			require.ErrorIs(t, err, pgsecure.ErrInsecureAuth)
			assert.Contains(t, err.Error(), "NoticeResponse")
			assert.Equal(t, []pgsecure.RefusalKind{pgsecure.RefusedAuthMethod}, events.refusals())
			assertNoPasswordLeak(t, p)
		})
	}
}

// TestBoundedHandshakeAcceptsRealServer: a real PostgreSQL 15's
// authentication exchanges pass the bounds: SCRAM with channel binding,
// and certificate authentication (no password exchange at all).
func TestBoundedHandshakeAcceptsRealServer(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{
		ClientCAPEM: pki.CA.CertPEM,
		HBA: []string{
			"hostssl all certonly 127.0.0.1/32 cert",
			"hostssl all all 127.0.0.1/32 scram-sha-256",
			"hostnossl all all 0.0.0.0/0 reject",
		},
	})
	pg.CreateRole(t, appUser, appPassword)
	pg.CreateRole(t, "certonly", "unused-"+appPassword)

	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).RequireChannelBinding().Build(ctx)
	require.NoError(t, err)
	pool.Reset()
	r := report(t, ctx, pool)
	pool.Close()
	assert.Equal(t, pgsecure.AuthSCRAM, r.AuthMethod)
	assert.True(t, r.ChannelBound())

	certFile, keyFile, _ := pki.Client(t, "certonly")
	pool, err = pgsecure.NewBuilder(fmt.Sprintf("postgres://certonly@localhost:%d/postgres?require_auth=none", pg.Port)).
		RootCAFile(pki.CAFile).ClientCertFiles(certFile, keyFile).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	r = report(t, ctx, pool)
	assert.Equal(t, pgsecure.AuthNone, r.AuthMethod)
	assert.NotNil(t, r.ClientCertificate)
}

// TestReplacedBuildFrontendStillWatched: a BuildFrontend set on what Config
// returned runs inside the authentication watch pgsecure's BeforeConnect
// installs on every connection: the pre-authentication bounds and the
// method policy still hold, with ErrInsecureAuth and one event each. Set by
// a hook that runs after pgsecure's BeforeConnect, it replaces the watch:
// the connection is then refused before the startup message.
func TestReplacedBuildFrontendStillWatched(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	pki, cert := localPeerCert(t)
	flood := testutil.PreAuthPeer(t, cert, func(w io.Writer) error {
		msg := testutil.Message('S', []byte("a\x00b\x00"))
		for i := 0; i < 1<<20; i++ {
			if _, err := w.Write(msg); err != nil {
				return err
			}
		}
		return nil
	})
	md5, md5PKI := authServer(t, "md5", "md5")
	for _, row := range []struct {
		name, dsn, ca, want string
	}{
		{"ParameterStatus before authentication", peerDSN(flood, "localhost"), pki.CAFile, "ParameterStatus"},
		{"md5", dsn(md5, "localhost"), md5PKI.CAFile, "asked for md5 authentication"},
	} {
		t.Run(row.name, func(t *testing.T) {
			var events eventLog
			var built atomic.Int32
			cfg, err := pgsecure.NewBuilder(row.dsn).RootCAFile(row.ca).OnEvent(events.add).Config(ctx)
			require.NoError(t, err)
			frontend := func(r io.Reader, w io.Writer) *pgproto3.Frontend {
				built.Add(1)
				return pgproto3.NewFrontend(r, w)
			}
			cfg.ConnConfig.BuildFrontend = frontend
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			require.NoError(t, err)
			defer pool.Close()
			err = pool.Ping(ctx)
			require.ErrorIs(t, err, pgsecure.ErrInsecureAuth)
			assert.Contains(t, err.Error(), row.want)
			assert.Equal(t, []pgsecure.RefusalKind{pgsecure.RefusedAuthMethod}, events.refusals())
			assert.Equal(t, int32(1), built.Load(), "the caller's BuildFrontend ran")

			// The same frontend set after pgsecure's BeforeConnect.
			events = eventLog{}
			cfg, err = pgsecure.NewBuilder(row.dsn).RootCAFile(row.ca).OnEvent(events.add).Config(ctx)
			require.NoError(t, err)
			afterPgsecure(cfg, func(cc *pgx.ConnConfig) { cc.BuildFrontend = frontend })
			late, err := pgxpool.NewWithConfig(ctx, cfg)
			require.NoError(t, err)
			defer late.Close()
			err = late.Ping(ctx)
			require.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
			assert.Contains(t, err.Error(), "BuildFrontend was replaced")
			assert.Equal(t, []pgsecure.RefusalKind{pgsecure.RefusedConfiguration}, events.refusals())
		})
	}
	assertNoPasswordLeak(t, flood)
}

// TestPreAuthPsqlRefusesToo: the libpq oracle. psql 15 refuses the same
// peers at the first message that is not an authentication request,
// before it sends a password.
func TestPreAuthPsqlRefusesToo(t *testing.T) {
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	pki, cert := localPeerCert(t)
	for _, row := range []struct {
		name string
		msg  []byte
		typ  string
	}{
		{"ParameterStatus", testutil.Message('S', []byte("application_name\x00x\x00")), "S"},
		{"small NoticeResponse", testutil.Message('N', []byte("SNOTICE\x00Mhello\x00\x00")), "N"},
		{"big NoticeResponse", testutil.Message('N', []byte("SNOTICE\x00M"+strings.Repeat("n", 1<<20+1)+"\x00\x00")), "N"},
	} {
		t.Run(row.name, func(t *testing.T) {
			p := testutil.PreAuthPeer(t, cert, func(w io.Writer) error {
				_, err := w.Write(row.msg)
				return err
			})
			conninfo := fmt.Sprintf("host=localhost port=%d user=%s dbname=postgres sslmode=verify-full sslrootcert=%s connect_timeout=10",
				p.Port, appUser, pki.CAFile)
			cmd := exec.CommandContext(ctxT(t), psql, "-w", "-X", "-A", "-t", "-c", "select 1", conninfo)
			cmd.Env = append(os.Environ(), "PGPASSWORD="+appPassword)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "psql connected: %s", out)
			assert.Contains(t, string(out), "expected authentication request from server, but received "+row.typ)
			assertNoPasswordLeak(t, p)
		})
	}
}
