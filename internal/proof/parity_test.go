package proof

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/internal/x509check"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parityCase is a server certificate and the host name the client uses.
type parityCase struct {
	name    string
	opts    certgen.Options
	otherCA bool
	host    string
	// libpq is libpq 15's documented verdict; the test checks psql agrees,
	// so a case cannot pass because both clients failed for another reason.
	libpq bool
}

func parityCases() []parityCase {
	now := time.Now()
	expired := testutil.LocalServerOptions()
	expired.NotBefore, expired.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour)
	ip := net.ParseIP("127.0.0.1")
	return []parityCase{
		{name: "SAN DNS", opts: certgen.Options{CommonName: "x", DNSNames: []string{"localhost"}}, host: "localhost", libpq: true},
		{name: "SAN IP", opts: certgen.Options{CommonName: "x", IPs: []net.IP{ip}}, host: "127.0.0.1", libpq: true},
		{name: "SAN DNS in upper case", opts: certgen.Options{DNSNames: []string{"LOCALHOST"}}, host: "localhost", libpq: true},
		{name: "CN-only matching", opts: certgen.Options{CommonName: "localhost"}, host: "localhost", libpq: true},
		{name: "CN-only not matching", opts: certgen.Options{CommonName: "db.example.test"}, host: "localhost", libpq: false},
		{name: "CN-only wildcard", opts: certgen.Options{CommonName: "*.example.test"}, host: "db.example.test", libpq: true},
		{name: "wildcard one label", opts: certgen.Options{DNSNames: []string{"*.example.test"}}, host: "db.example.test", libpq: true},
		{name: "wildcard two labels", opts: certgen.Options{DNSNames: []string{"*.example.test"}}, host: "a.db.example.test", libpq: false},
		{name: "wildcard bare domain", opts: certgen.Options{DNSNames: []string{"*.example.test"}}, host: "example.test", libpq: false},
		{name: "IP host, DNS SAN only, CN = IP", opts: certgen.Options{CommonName: "127.0.0.1", DNSNames: []string{"localhost"}}, host: "127.0.0.1", libpq: true},
		{name: "DNS host, IP SAN only, CN = host", opts: certgen.Options{CommonName: "localhost", IPs: []net.IP{ip}}, host: "localhost", libpq: true},
		{name: "DNS SAN present, CN matching", opts: certgen.Options{CommonName: "localhost", DNSNames: []string{"db.example.test"}}, host: "localhost", libpq: false},
		{name: "expired", opts: expired, host: "localhost", libpq: false},
		{name: "other CA", opts: testutil.LocalServerOptions(), otherCA: true, host: "localhost", libpq: false},
		// Issue 9, defect 3: libpq folds ASCII letters only.
		{name: "CN look-alike: long s", opts: certgen.Options{CommonName: "ſerver.example.test"}, host: "server.example.test", libpq: false},
		{name: "CN look-alike: Kelvin sign", opts: certgen.Options{CommonName: "\u212Aey.example.test"}, host: "key.example.test", libpq: false},
		{name: "CN wildcard look-alike: Kelvin sign", opts: certgen.Options{CommonName: "*.e\u212Aample.test"}, host: "db.ekample.test", libpq: false},
		// Issue 15.2: IPv4 hosts as inet_aton reads them.
		{name: "IPv4 leading zeros, SAN IP", opts: certgen.Options{CommonName: "x", IPs: []net.IP{ip}}, host: "127.000.000.001", libpq: true},
		{name: "IPv4 short form, SAN IP", opts: certgen.Options{CommonName: "x", IPs: []net.IP{ip}}, host: "127.1", libpq: true},
		{name: "IPv4 hex, SAN IP", opts: certgen.Options{CommonName: "x", IPs: []net.IP{ip}}, host: "0x7f.0.0.1", libpq: true},
		{name: "IPv4 octal, SAN IP", opts: certgen.Options{CommonName: "x", IPs: []net.IP{ip}}, host: "0177.0.0.1", libpq: true},
		{name: "IPv4 leading zeros, other SAN IP", opts: certgen.Options{CommonName: "127.000.000.001", IPs: []net.IP{net.ParseIP("127.0.0.2")}}, host: "127.000.000.001", libpq: false},
		{name: "IPv4 leading zeros, CN spelled alike, DNS SAN only", opts: certgen.Options{CommonName: "127.000.000.001", DNSNames: []string{"localhost"}}, host: "127.000.000.001", libpq: true},
	}
}

// TestLibpqParity: for each case, psql (libpq) and pgsecure, both with
// sslmode=verify-full and the same root certificate, connect to the same
// server; pgsecure must accept exactly when libpq does.
func TestLibpqParity(t *testing.T) {
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	pki := testutil.NewPKI(t)
	other, err := certgen.NewCA("unpinned CA", certgen.ECDSAP256)
	require.NoError(t, err)
	pg := startServer(t, pki, testutil.LocalServerOptions())

	for _, c := range parityCases() {
		t.Run(c.name, func(t *testing.T) {
			ca := pki.CA
			if c.otherCA {
				ca = other
			}
			pair, err := ca.Issue(c.opts)
			require.NoError(t, err)
			pg.SetServerCert(t, pair.CertPEM, pair.KeyPEM)

			libpqOK, libpqOut := runPsql(t, psql, pki.CAFile, c.host, pg.Port)
			require.Equal(t, c.libpq, libpqOK, "psql disagrees with libpq's documented behaviour: %s", libpqOut)
			if !libpqOK {
				require.Contains(t, libpqOut, "certificate", "psql must fail on the certificate, not on something else")
			}

			err = connectPgsecure(t, pki.CAFile, c.host, pg.Port)
			if libpqOK {
				assert.NoError(t, err, "libpq accepts, pgsecure must too")
			} else {
				assert.ErrorIs(t, err, pgsecure.ErrUntrustedServer, "libpq refuses (%s), pgsecure must too", strings.TrimSpace(libpqOut))
			}
			if err != nil {
				assert.NotContains(t, err.Error(), appPassword)
			}
		})
	}
}

// runPsql connects with psql and reports whether SELECT 1 succeeded, with
// psql's output. The password travels only in PGPASSWORD; HOME is empty so
// no ~/.postgresql file or ~/.pgpass takes part.
func runPsql(t *testing.T, psql, caFile, host string, port int) (bool, string) {
	t.Helper()
	conn := "host=" + host + " port=" + strconv.Itoa(port) + " user=" + appUser + " dbname=postgres" +
		" sslmode=verify-full sslrootcert=" + caFile
	if _, isIP := x509check.HostAddr(host); !isIP {
		conn += " hostaddr=127.0.0.1" // the name is only checked, never resolved
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, "-w", "-X", "-A", "-t", "-c", "SELECT 1", conn)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C", "PGPASSWORD=" + appPassword, "PGCONNECT_TIMEOUT=10"}
	out, err := cmd.CombinedOutput()
	require.NotContains(t, cmd.Args, appPassword)
	return err == nil && strings.TrimSpace(string(out)) == "1", string(out)
}

// connectPgsecure opens one pgsecure connection to host, which resolves to
// 127.0.0.1 whatever name it is.
func connectPgsecure(t *testing.T, caFile, host string, port int) error {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	cfg, err := pgsecure.NewBuilder(dsn(host, port, "")).RootCAFile(caFile).Logger(quiet).Config(ctx)
	if err != nil {
		return err
	}
	if _, isIP := x509check.HostAddr(host); !isIP {
		// A name resolves to 127.0.0.1; an address (127.1, 0x7f.0.0.1)
		// goes through pgsecure's own resolution, as libpq dials it.
		cfg.ConnConfig.LookupFunc = func(context.Context, string) ([]string, error) { return []string{"127.0.0.1"}, nil }
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	return pool.Ping(ctx)
}
