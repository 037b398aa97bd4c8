package proof

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/internal/x509check"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// opensslConfig holds the extensions of PostgreSQL's src/test/ssl
// configuration files (cas.config, server_ca.config, server-*.config).
const opensslConfig = `[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
CN = overridden by -subj

[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_ca_constrained ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
nameConstraints = critical, permitted;DNS:example.com

[ server_cn_only ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth

[ server ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
`

// opensslPKI makes keys and certificates with the openssl command line, the
// way PostgreSQL's src/test/ssl/sslfiles.mk does: a self-signed root CA,
// CAs and server certificates signed with "openssl x509 -req". Files live in
// a test directory and are named after their role.
type opensslPKI struct {
	t       *testing.T
	openssl string
	dir     string
	serial  int
}

func newOpenSSLPKI(t *testing.T) *opensslPKI {
	t.Helper()
	o := &opensslPKI{t: t, openssl: testutil.RequireTool(t, "openssl", "openssl"), dir: t.TempDir()}
	require.NoError(t, os.WriteFile(o.path("openssl.config"), []byte(opensslConfig), 0o600))
	return o
}

func (o *opensslPKI) path(name string) string { return filepath.Join(o.dir, name) }

func (o *opensslPKI) run(args ...string) {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.openssl, args...)
	cmd.Dir = o.dir
	out, err := cmd.CombinedOutput()
	require.NoError(o.t, err, "openssl %s:\n%s", strings.Join(args, " "), out)
}

// key writes NAME.key: "rsa" (2048 bits, as src/test/ssl) or "rsa-pss".
func (o *opensslPKI) key(name, algorithm string) {
	o.t.Helper()
	o.run("genpkey", "-algorithm", algorithm, "-pkeyopt", "rsa_keygen_bits:2048", "-out", name+".key")
}

// rootCA writes NAME.key and the self-signed NAME.crt.
func (o *opensslPKI) rootCA(name, cn string) {
	o.t.Helper()
	o.key(name, "rsa")
	o.run("req", "-new", "-x509", "-config", "openssl.config", "-extensions", "v3_ca", "-days", "30",
		"-subj", "/CN="+cn, "-key", name+".key", "-out", name+".crt")
}

// issue writes NAME.key (of algorithm) and NAME.crt, signed by issuer's key,
// with the openssl.config section ext ("v3_ca" or "server").
func (o *opensslPKI) issue(name, cn, algorithm, issuer, ext string) {
	o.t.Helper()
	o.key(name, algorithm)
	o.run("req", "-new", "-config", "openssl.config", "-subj", "/CN="+cn, "-key", name+".key", "-out", name+".csr")
	o.serial++
	o.run("x509", "-req", "-in", name+".csr", "-CA", issuer+".crt", "-CAkey", issuer+".key",
		"-set_serial", strconv.Itoa(1000+o.serial), "-days", "30", "-extfile", "openssl.config", "-extensions", ext, "-out", name+".crt")
}

// read returns the concatenation of the named files.
func (o *opensslPKI) read(names ...string) []byte {
	o.t.Helper()
	var b []byte
	for _, n := range names {
		c, err := os.ReadFile(o.path(n))
		require.NoError(o.t, err)
		b = append(b, c...)
	}
	return b
}

// bundle writes the concatenation of names to a new file and returns its path.
func (o *opensslPKI) bundle(file string, names ...string) string {
	o.t.Helper()
	require.NoError(o.t, os.WriteFile(o.path(file), o.read(names...), 0o600))
	return o.path(file)
}

// TestLibpqParityTrustAnchors (issue 15.1): with the chain PostgreSQL's
// src/test/ssl uses (root CA → server CA → server certificate, the server
// sending its CA), psql trusts sslrootcert only through a self-signed root;
// pgsecure must agree, and say how to fix an intermediate pinned alone.
func TestLibpqParityTrustAnchors(t *testing.T) {
	t.Parallel()
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	o := newOpenSSLPKI(t)
	o.rootCA("root_ca", "Test root CA for pgsecure")
	o.issue("server_ca", "Test server CA for pgsecure", "rsa", "root_ca", "v3_ca")
	o.issue("server", "localhost", "rsa", "server_ca", "server")
	pg := testutil.StartPostgres(t, testutil.PGOptions{ServerCertPEM: o.read("server.crt", "server_ca.crt"), ServerKeyPEM: o.read("server.key")})
	pg.CreateRole(t, appUser, appPassword)

	cases := []struct {
		name        string
		serverSends []string // ssl_cert_file, leaf first
		rootFile    []string // sslrootcert / RootCAFile
		libpq       bool
		want        string // in pgsecure's refusal
	}{
		{"root CA", []string{"server.crt", "server_ca.crt"}, []string{"root_ca.crt"}, true, ""},
		{"server CA and root CA", []string{"server.crt", "server_ca.crt"}, []string{"server_ca.crt", "root_ca.crt"}, true, ""},
		{"server CA alone", []string{"server.crt", "server_ca.crt"}, []string{"server_ca.crt"}, false,
			`Builder.RootCAFile (pgsecure check --ca) holds only the intermediate CA "CN=Test server CA for pgsecure"`},
		{"server CA alone, server sends the root too", []string{"server.crt", "server_ca.crt", "root_ca.crt"}, []string{"server_ca.crt"}, false,
			`add the root CA certificate (subject "CN=Test root CA for pgsecure")`},
		{"server certificate alone", []string{"server.crt", "server_ca.crt"}, []string{"server.crt"}, false,
			"holds the server certificate itself, which is not self-signed"},
		// Issue 19.1: the CA bundle of src/test/ssl (root+server_ca.crt with
		// server-cn-only.crt): the server sends only its leaf, the pinned
		// file holds the root and the intermediate, in either order.
		{"leaf only sent, root and server CA pinned", []string{"server.crt"}, []string{"root_ca.crt", "server_ca.crt"}, true, ""},
		{"leaf only sent, server CA and root pinned", []string{"server.crt"}, []string{"server_ca.crt", "root_ca.crt"}, true, ""},
		{"leaf only sent, server CA alone pinned", []string{"server.crt"}, []string{"server_ca.crt"}, false,
			`Builder.RootCAFile (pgsecure check --ca) holds only the intermediate CA "CN=Test server CA for pgsecure"`},
		{"leaf only sent, root alone pinned", []string{"server.crt"}, []string{"root_ca.crt"}, false,
			`issued by "CN=Test server CA for pgsecure", which does not lead to the pinned CA`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pg.SetServerCert(t, o.read(c.serverSends...), o.read("server.key"))
			caFile := o.bundle("roots-"+strconv.Itoa(i)+".crt", c.rootFile...)

			if err := chainParity(t, psql, caFile, "localhost", pg.Port, c.libpq); err != nil {
				assert.Contains(t, err.Error(), c.want)
			}
		})
	}
}

// TestLibpqParityRSAPSS (issue 15.3) records the one difference pgsecure
// cannot remove: psql connects to a server whose key is RSA-PSS (as
// src/test/ssl's server-rsapss), Go's crypto/tls fails the handshake. The
// refusal must be ErrNotEncrypted, and the check command's diagnosis
// (x509check.ExplainHandshakeFailure) must name RSA-PSS.
func TestLibpqParityRSAPSS(t *testing.T) {
	t.Parallel()
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	o := newOpenSSLPKI(t)
	o.rootCA("root_ca", "Test root CA for pgsecure")
	o.issue("server-rsapss", "localhost", "rsa-pss", "root_ca", "server")
	pg := testutil.StartPostgres(t, testutil.PGOptions{ServerCertPEM: o.read("server-rsapss.crt"), ServerKeyPEM: o.read("server-rsapss.key")})
	pg.CreateRole(t, appUser, appPassword)
	caFile := o.path("root_ca.crt")

	libpqOK, libpqOut := runPsql(t, psql, caFile, "localhost", pg.Port)
	err := connectPgsecure(t, caFile, "localhost", pg.Port)
	t.Logf("psql: ok=%v %s; pgsecure: %v", libpqOK, strings.TrimSpace(libpqOut), err)
	require.True(t, libpqOK, "psql connects to an RSA-PSS server: %s", libpqOut)
	require.ErrorIs(t, err, pgsecure.ErrNotEncrypted)
	assert.Contains(t, err.Error(), "tls: handshake failure")
	assert.NotContains(t, err.Error(), appPassword)

	ctx := ctxT(t, 30*time.Second)
	chain, perr := x509check.ProbeCertificate(ctx, pg.Addr())
	require.NoError(t, perr)
	assert.True(t, x509check.IsRSAPSS(chain[0]), "the probe sees the RSA-PSS certificate")
	assert.Equal(t, x509check.RSAPSSExplanation, x509check.ExplainHandshakeFailure(ctx, pg.Addr(), err))
}

// TestLibpqParityCommonNameConstraints (issue 19.2): an intermediate
// permitted only DNS:example.com issues a certificate with no
// subjectAltName whose Common Name is another host. OpenSSL checks a
// host-like Common Name against the chain's DNS name constraints
// (NAME_CONSTRAINTS_check_CN), so psql refuses it; pgsecure must too, and
// must still accept a Common Name inside the permitted subtree.
func TestLibpqParityCommonNameConstraints(t *testing.T) {
	t.Parallel()
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	o := newOpenSSLPKI(t)
	o.rootCA("root_ca", "Test root CA for pgsecure")
	o.issue("nc_ca", "Constrained CA for pgsecure", "rsa", "root_ca", "v3_ca_constrained")
	o.issue("evil", "db.evil.test", "rsa", "nc_ca", "server_cn_only")
	o.issue("good", "db.example.com", "rsa", "nc_ca", "server_cn_only")
	pg := testutil.StartPostgres(t, testutil.PGOptions{ServerCertPEM: o.read("good.crt", "nc_ca.crt"), ServerKeyPEM: o.read("good.key")})
	pg.CreateRole(t, appUser, appPassword)
	caFile := o.path("root_ca.crt")

	for _, c := range []struct {
		leaf, host string
		libpq      bool
	}{
		{"good", "db.example.com", true},
		{"evil", "db.evil.test", false},
	} {
		t.Run(c.host, func(t *testing.T) {
			pg.SetServerCert(t, o.read(c.leaf+".crt", "nc_ca.crt"), o.read(c.leaf+".key"))
			if err := chainParity(t, psql, caFile, c.host, pg.Port, c.libpq); err != nil {
				assert.Contains(t, err.Error(), `Common Name "db.evil.test"`)
				assert.Contains(t, err.Error(), `"CN=Constrained CA for pgsecure"`)
			}
		})
	}
}

// chainParity connects with psql and with pgsecure to host:port trusting
// caFile: psql must do what libpq is documented to do (libpq: accept), and
// pgsecure the same. When both refuse, psql must have failed on the chain
// and pgsecure with ErrUntrustedServer and no password in its error, which
// is returned for the caller's checks of its wording (nil otherwise).
func chainParity(t *testing.T, psql, caFile, host string, port int, libpq bool) error {
	t.Helper()
	libpqOK, libpqOut := runPsql(t, psql, caFile, host, port)
	err := connectPgsecure(t, caFile, host, port)
	t.Logf("psql: ok=%v %s; pgsecure: %v", libpqOK, strings.TrimSpace(libpqOut), err)
	require.Equal(t, libpq, libpqOK, "psql disagrees with libpq's documented behaviour: %s", libpqOut)
	if libpq {
		assert.NoError(t, err, "libpq accepts, pgsecure must too")
		return nil
	}
	require.Contains(t, libpqOut, "certificate verify failed", "psql must fail on the chain, not on something else")
	require.ErrorIs(t, err, pgsecure.ErrUntrustedServer, "libpq refuses, pgsecure must too")
	assert.NotContains(t, err.Error(), appPassword)
	return err
}
