package pgsecure_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/verify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mtlsServer starts a real PostgreSQL 15 that demands a client certificate
// issued by the test CA whose CN is the role (clientcert=verify-full) on top
// of the role's SCRAM password.
func mtlsServer(t *testing.T) (*testutil.Postgres, *testutil.PKI) {
	t.Helper()
	pki := testutil.NewPKI(t)
	pg := pki.StartPostgres(t, testutil.PGOptions{
		ClientCAPEM: pki.CA.CertPEM,
		HBA: []string{
			"hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full",
			"hostnossl all all 0.0.0.0/0 reject",
		},
	})
	pg.CreateRole(t, appUser, appPassword)
	return pg, pki
}

// report acquires a connection and returns its verification report.
func report(t *testing.T, ctx context.Context, pool *pgxpool.Pool) verify.Report {
	t.Helper()
	r, err := pgsecure.ReportOf(ctx, pool)
	require.NoError(t, err)
	return r
}

// privateCopy writes data to a new 0600 file, as a deployed key would be.
func privateCopy(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

// replaceFile rewrites path and moves its modification time forward, so
// the change is seen whatever the file system's timestamp granularity.
func replaceFile(t *testing.T, path string, data []byte, step int) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, 0o600))
	at := time.Now().Add(time.Duration(step) * time.Minute)
	require.NoError(t, os.Chtimes(path, at, at))
}

func TestMutualTLSClientCertFiles(t *testing.T) {
	t.Parallel()
	pg, pki := mtlsServer(t)
	ctx := ctxT(t)
	certFile, keyFile, pair := pki.Client(t, appUser)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).ClientCertFiles(certFile, keyFile).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	r := report(t, ctx, pool)
	assert.True(t, r.Server.SSL)
	assert.Contains(t, r.Server.ClientDN, "CN="+appUser, "the server saw the client certificate")
	assert.Equal(t, pair.Cert.SerialNumber.String(), r.Server.ClientSerial)
	require.NotNil(t, r.ClientCertificate)
	assert.Equal(t, pair.Cert.SerialNumber.String(), r.ClientCertificate.SerialNumber)
}

func TestMutualTLSClientCertPEM(t *testing.T) {
	t.Parallel()
	pg, pki := mtlsServer(t)
	ctx := ctxT(t)
	_, _, pair := pki.Client(t, appUser)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).ClientCertPEM(pair.CertPEM, pair.KeyPEM).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	assert.Equal(t, pair.Cert.SerialNumber.String(), report(t, ctx, pool).Server.ClientSerial)
}

func TestMutualTLSWithoutClientCertRefusedByServer(t *testing.T) {
	t.Parallel()
	pg, pki := mtlsServer(t)
	_, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).Build(ctxT(t))
	require.Error(t, err)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "the server's refusal reaches the caller: %v", err)
	assert.Equal(t, "28000", pgErr.Code)
	assert.Contains(t, pgErr.Message, "certificate")
	assert.NotContains(t, err.Error(), appPassword)
}

// encryptedClientKey returns the encrypted PKCS#8 key fixture (copied to a
// private file) and a client certificate for it issued by pki.
func encryptedClientKey(t *testing.T, pki *testutil.PKI) (certFile, keyFile string, cert []byte) {
	t.Helper()
	keyPEM := testutil.KeyFixture(t, "ec-pbes2-aes256-sha256.key")
	plain := testutil.KeyFixture(t, "ec-pkcs8.key")
	key, err := certgen.ParseKeyPEM(plain)
	require.NoError(t, err)
	cert = testutil.ClientCertForKey(t, pki.CA, key.Public(), appUser)
	return privateCopy(t, "client.crt", cert), privateCopy(t, "client.key", keyPEM), cert
}

func TestMutualTLSEncryptedKeyFromDSN(t *testing.T) {
	t.Parallel()
	pg, pki := mtlsServer(t)
	ctx := ctxT(t)
	certFile, keyFile, _ := encryptedClientKey(t, pki)
	withKey := func(password string) string {
		return dsn(pg, "localhost") + "?" + url.Values{"sslcert": {certFile}, "sslkey": {keyFile}, "sslpassword": {password}}.Encode()
	}
	pool, err := pgsecure.NewBuilder(withKey(testutil.FixturePassphrase)).RootCAFile(pki.CAFile).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	assert.Contains(t, report(t, ctx, pool).Server.ClientDN, "CN="+appUser)

	wrong := "Wr0ng-Key-Passphrase"
	_, err = pgsecure.NewBuilder(withKey(wrong)).RootCAFile(pki.CAFile).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrKeyPassphrase)
	assert.Contains(t, err.Error(), keyFile)
	assert.NotContains(t, err.Error(), wrong)
}

func TestMutualTLSFromEnvironmentWithPassphraseCallback(t *testing.T) {
	pg, pki := mtlsServer(t)
	ctx := ctxT(t)
	certFile, keyFile, _ := encryptedClientKey(t, pki)
	t.Setenv("PGSSLCERT", certFile)
	t.Setenv("PGSSLKEY", keyFile)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).
		ClientKeyPassphrase(func(context.Context) ([]byte, error) { return []byte(testutil.FixturePassphrase), nil }).
		Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	assert.Contains(t, report(t, ctx, pool).Server.ClientDN, "CN="+appUser)
}

// TestMutualTLSRotationUnderRunningPool renews the client certificate on
// disk and the server certificate in PostgreSQL while the pool holds a
// connection: new connections use the new material, the old one carries on.
func TestMutualTLSRotationUnderRunningPool(t *testing.T) {
	t.Parallel()
	pg, pki := mtlsServer(t)
	ctx := ctxT(t)
	_, _, first := pki.Client(t, appUser)
	certFile := privateCopy(t, "client.crt", first.CertPEM)
	keyFile := privateCopy(t, "client.key", first.KeyPEM)
	pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).ClientCertFiles(certFile, keyFile).MaxConns(4).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	held, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer held.Release()

	_, _, second := pki.Client(t, appUser)
	replaceFile(t, keyFile, second.KeyPEM, 1)
	replaceFile(t, certFile, second.CertPEM, 1)
	_, _, server := pki.Server(t, testutil.LocalServerOptions())
	pg.SetServerCert(t, server.CertPEM, server.KeyPEM)

	fresh, err := pool.Acquire(ctx) // held is busy, so this is a new connection
	require.NoError(t, err)
	defer fresh.Release()
	r, err := pgsecure.ConnReport(fresh.Conn())
	require.NoError(t, err)
	assert.Equal(t, second.Cert.SerialNumber.String(), r.Server.ClientSerial, "the server saw the renewed client certificate")
	assert.Equal(t, server.Cert.SerialNumber.String(), r.Leaf().SerialNumber, "the client saw the renewed server certificate")

	var serial string
	require.NoError(t, held.QueryRow(ctx, "SELECT client_serial::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&serial))
	assert.Equal(t, first.Cert.SerialNumber.String(), serial, "the connection opened before the rotation still works")
}

func TestSPKIPinAgainstRealServer(t *testing.T) {
	t.Parallel()
	pki := testutil.NewPKI(t)
	_, _, srv := pki.Server(t, testutil.LocalServerOptions())
	pg := pki.StartPostgres(t, testutil.PGOptions{ServerCertPEM: srv.CertPEM, ServerKeyPEM: srv.KeyPEM})
	pg.CreateRole(t, appUser, appPassword)
	ctx := ctxT(t)
	current, err := pgsecure.SPKIPin(srv.CertPEM)
	require.NoError(t, err)
	next, err := certgen.GenerateKey(certgen.ECDSAP256)
	require.NoError(t, err)
	nextPin := pinOfKey(t, next.Public())
	caPin, err := pgsecure.SPKIPin(pki.CA.CertPEM)
	require.NoError(t, err)

	for name, pins := range map[string][]string{
		"current and next": {current, nextPin},
		"the CA's key":     {caPin},
	} {
		t.Run(name, func(t *testing.T) {
			pool, err := pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).SPKIPins(pins...).Build(ctx)
			require.NoError(t, err)
			pool.Close()
		})
	}

	_, err = pgsecure.NewBuilder(dsn(pg, "localhost")).RootCAFile(pki.CAFile).SPKIPins(nextPin).Build(ctx)
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer)
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	var ce *pgsecure.CertificateError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), current, "the message shows the server's pin")
	assert.Contains(t, err.Error(), "SPKIPins")
	assert.NotContains(t, err.Error(), appPassword)
}

// pinOfKey is the pin of a certificate for pub.
func pinOfKey(t *testing.T, pub any) string {
	t.Helper()
	ca, err := certgen.NewCA("pin only", certgen.ECDSAP256)
	require.NoError(t, err)
	pin, err := pgsecure.SPKIPin(testutil.ClientCertForKey(t, ca, pub, "next"))
	require.NoError(t, err)
	return pin
}
