package pgsecure_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
)

// qPassword has an unencoded '?': libpq and pgx read a URL password up to
// the '@' before the host, so the query starts at the second '?'.
const qPassword = "Corr3ct?Horse-Battery"

func qURL(host string, port int, query string) string {
	return fmt.Sprintf("postgres://%s:%s@%s:%d/postgres?%s", appUser, qPassword, host, port, query)
}

// TestQuestionMarkInPasswordHidesNoSetting: each setting placed first in
// the query of a URL whose password holds a '?' is read, checked and
// applied, as psql does, against a real PostgreSQL capped at TLS 1.2.
func TestQuestionMarkInPasswordHidesNoSetting(t *testing.T) {
	t.Parallel()
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	pki := testutil.NewPKI(t)
	o := testutil.LocalServerOptions()
	o.DNSNames = append(o.DNSNames, "db.example.com")
	pair, err := pki.CA.Issue(o)
	require.NoError(t, err)
	pg := testutil.StartPostgres(t, testutil.PGOptions{ServerCertPEM: pair.CertPEM, ServerKeyPEM: pair.KeyPEM,
		Conf: map[string]string{"ssl_max_protocol_version": "'TLSv1.2'"}})
	pg.CreateRole(t, appUser, qPassword)
	ctx := ctxT(t)
	ca := "sslmode=verify-full&sslrootcert=" + pki.CAFile

	t.Run("ssl_min_protocol_version", func(t *testing.T) {
		out, err := psqlURL(t, psql, qURL("localhost", pg.Port, ca))
		require.NoError(t, err, "psql logs in with the password up to the '@': %s", out)
		out, err = psqlURL(t, psql, qURL("localhost", pg.Port, "ssl_min_protocol_version=TLSv1.3&"+ca))
		require.Error(t, err, "psql refuses a server capped at TLS 1.2 when 1.3 is asked for")
		t.Logf("psql: %s", out)

		pool, err := pgsecure.NewBuilder(qURL("localhost", pg.Port, ca)).Build(ctx)
		require.NoError(t, err)
		pool.Close()
		_, err = pgsecure.NewBuilder(qURL("localhost", pg.Port, "ssl_min_protocol_version=TLSv1.3&"+ca)).Build(ctx)
		require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
		assert.Contains(t, err.Error(), "protocol version")
		assert.NotContains(t, err.Error(), qPassword)
	})
	t.Run("sslrootcert", func(t *testing.T) {
		pool, err := pgsecure.NewBuilder(qURL("localhost", pg.Port, "sslrootcert="+pki.CAFile)).Build(ctx)
		require.NoError(t, err, "the trust anchor comes from the first query parameter")
		pool.Close()
	})
	t.Run("no query", func(t *testing.T) {
		// The password holds the URL's only '?': nothing pgsecure adds for pgx
		// may land in the database name.
		pool, err := pgsecure.NewBuilder(fmt.Sprintf("postgres://%s:%s@localhost:%d/postgres", appUser, qPassword, pg.Port)).
			RootCAFile(pki.CAFile).Build(ctx)
		require.NoError(t, err)
		var db string
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_database()").Scan(&db))
		assert.Equal(t, "postgres", db)
		pool.Close()
	})
	t.Run("hostaddr", func(t *testing.T) {
		// db.example.com is never resolved: hostaddr says where to connect.
		noDNS := func(cfg *pgxpool.Config) {
			cfg.ConnConfig.LookupFunc = func(context.Context, string) ([]string, error) {
				return nil, errors.New("this test resolves no names")
			}
		}
		pool, err := pgsecure.NewBuilder(qURL("db.example.com", pg.Port, "hostaddr=127.0.0.1&sslrootcert="+pki.CAFile)).
			ConfigurePool(noDNS).Build(ctx)
		require.NoError(t, err)
		defer pool.Close()
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		defer c.Release()
		r, _ := pgsecure.ConnReport(c.Conn())
		assert.Equal(t, "db.example.com", r.ServerName)
	})
}

// TestQuestionMarkInPasswordCannotSmuggleRefusedKeys: service (whose file
// pgx would read) and gssencmode=require, placed first in the query of a
// URL whose password holds a '?', are refused as they are anywhere else.
func TestQuestionMarkInPasswordCannotSmuggleRefusedKeys(t *testing.T) {
	ca, err := certgen.NewCA("test CA", certgen.ECDSAP256)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "pg_service.conf")
	require.NoError(t, os.WriteFile(file, []byte("[other]\nuser=someone_else\ndbname=elsewhere\n"), 0o600))
	t.Setenv("PGSERVICEFILE", file)
	for key, query := range map[string]string{
		"service":    "service=other&sslmode=verify-full",
		"gssencmode": "gssencmode=require&sslmode=verify-full",
	} {
		_, err := pgsecure.NewBuilder(qURL("localhost", 5999, query)).RootCAPEM(ca.CertPEM).Config(context.Background())
		require.ErrorIs(t, err, pgsecure.ErrInsecureConfig, key)
		var ce *pgsecure.ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, key, ce.Setting)
		assert.NotContains(t, err.Error(), qPassword)
	}
}

// TestQuestionMarkInPasswordKeepsSSLSNI: sslsni=0 first in the query of a
// URL whose password holds a '?' still keeps the host name out of the
// ClientHello. The server is a test double recording the SNI (PostgreSQL
// does not report it).
func TestQuestionMarkInPasswordKeepsSSLSNI(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	pair, err := pki.CA.Issue(testutil.LocalServerOptions())
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	require.NoError(t, err)
	for query, want := range map[string]string{"connect_timeout=5": "localhost", "sslsni=0&connect_timeout=5": ""} {
		// A double of its own per row: a pool's connection still being made
		// after Close must not be read as the next row's.
		addr, sni := sniRecorder(t, cert)
		port := addr.(*net.TCPAddr).Port
		cfg, err := pgsecure.NewBuilder(qURL("localhost", port, query)).RootCAFile(pki.CAFile).Config(ctxT(t))
		require.NoError(t, err)
		pool, err := pgxpool.NewWithConfig(ctxT(t), cfg)
		require.NoError(t, err)
		_ = pool.Ping(ctxT(t)) // the double closes after the handshake
		pool.Close()
		got, ok := sni()
		require.True(t, ok, "no ClientHello reached the double")
		assert.Equal(t, want, got, query)
	}
}

// sniRecorder is a test double, not a PostgreSQL server: it answers 'S' to
// an SSLRequest, completes TLS with cert, records the ClientHello's server
// name and closes. sni returns the last one recorded and forgets it.
func sniRecorder(t *testing.T, cert tls.Certificate) (addr net.Addr, sni func() (string, bool)) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var last *string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c, make([]byte, 8)); err != nil {
					return
				}
				if _, err := c.Write([]byte("S")); err != nil {
					return
				}
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert},
					GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
						mu.Lock()
						name := h.ServerName
						last = &name
						mu.Unlock()
						return nil, nil
					}})
				_ = tc.Handshake()
			}()
		}
	}()
	return ln.Addr(), func() (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if last == nil {
			return "", false
		}
		s := *last
		last = nil
		return s, true
	}
}

// psqlURL runs SELECT 1 with psql on a URL; HOME is empty so no
// ~/.postgresql file or ~/.pgpass takes part.
func psqlURL(t *testing.T, psql, url string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, "-w", "-X", "-A", "-t", "-c", "SELECT 1", url)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C", "PGCONNECT_TIMEOUT=10"}
	out, err := cmd.CombinedOutput()
	if err == nil && strings.TrimSpace(string(out)) != "1" {
		err = fmt.Errorf("unexpected output")
	}
	return strings.TrimSpace(string(out)), err
}
