package proof

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/certgen"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crlWorld is the PKI the CRL tests share: a root, an intermediate under it,
// a server certificate under each, CAs that carry the same names as root and
// intermediate under other keys, and the CRLs `openssl ca` makes for them.
type crlWorld struct {
	openssl              string
	root, inter          *testutil.OpenSSLCA
	leafShort, leafLong  *certgen.Pair // issued by root / by the intermediate
	caFile               string        // the root alone, as sslrootcert
	chainShort, chainLng []byte        // what the server sends
	crl                  map[string][]byte
}

// CRL names in crlWorld.crl: <ca>-<clean|revoked>[-expired], forged-<ca>.
func newCRLWorld(t *testing.T) *crlWorld {
	t.Helper()
	w := &crlWorld{openssl: testutil.RequireTool(t, "openssl", "openssl"), crl: map[string][]byte{}}
	root, err := certgen.NewCA("pgsecure CRL test root", certgen.ECDSAP256)
	require.NoError(t, err)
	inter, err := certgen.NewIntermediate(root, "pgsecure CRL test intermediate", certgen.ECDSAP256)
	require.NoError(t, err)
	w.root, w.inter = testutil.NewOpenSSLCA(t, w.openssl, root), testutil.NewOpenSSLCA(t, w.openssl, inter)
	w.leafShort, err = root.Issue(testutil.LocalServerOptions())
	require.NoError(t, err)
	w.leafLong, err = inter.Issue(testutil.LocalServerOptions())
	require.NoError(t, err)
	w.caFile = testutil.WritePEM(t, t.TempDir(), "root.crt", root.CertPEM)
	w.chainShort = w.leafShort.CertPEM
	w.chainLng = w.leafLong.ChainPEM(inter)

	for _, c := range []struct {
		name string
		ca   *testutil.OpenSSLCA
	}{{"root", w.root}, {"inter", w.inter}} {
		w.crl[c.name+"-clean"] = c.ca.CRL(t, time.Time{}, time.Time{})
		w.crl[c.name+"-clean-expired"] = c.ca.CRL(t, past(48*time.Hour), past(24*time.Hour))
	}
	w.root.Revoke(t, w.leafShort.CertPEM, "")
	w.root.Revoke(t, inter.CertPEM, "")
	w.inter.Revoke(t, w.leafLong.CertPEM, "")
	for _, c := range []struct {
		name string
		ca   *testutil.OpenSSLCA
	}{{"root", w.root}, {"inter", w.inter}} {
		w.crl[c.name+"-revoked"] = c.ca.CRL(t, time.Time{}, time.Time{})
		w.crl[c.name+"-revoked-expired"] = c.ca.CRL(t, past(48*time.Hour), past(24*time.Hour))
		// Same issuer name, another key: a CRL the CA never signed.
		forged, err := certgen.NewCA(c.ca.Cert.Subject.CommonName, certgen.ECDSAP256)
		require.NoError(t, err)
		w.crl["forged-"+c.name] = testutil.NewOpenSSLCA(t, w.openssl, forged).CRL(t, time.Time{}, time.Time{})
	}
	return w
}

// crlRow is one combination of the matrix.
type crlRow struct {
	form    string // sslcrl, sslcrldir, both, PGSSLCRL, PGSSLCRLDIR
	chain   string // "root>leaf" or "root>int>leaf"
	revoked string // none, leaf, intermediate
	state   string // current, expired, other-CA, missing
}

func (r crlRow) String() string {
	return fmt.Sprintf("%s %s revoked=%s crl=%s", r.form, r.chain, r.revoked, r.state)
}

// crlRows is the cross product of the forms, chains, revocations and CRL
// states, without "intermediate revoked" for a chain that has none.
func crlRows() []crlRow {
	var rows []crlRow
	for _, chain := range []string{"root>leaf", "root>int>leaf"} {
		for _, revoked := range []string{"none", "leaf", "intermediate"} {
			if revoked == "intermediate" && chain == "root>leaf" {
				continue
			}
			for _, state := range []string{"current", "expired", "other-CA", "missing"} {
				for _, form := range []string{"sslcrl", "sslcrldir", "both", "PGSSLCRL", "PGSSLCRLDIR"} {
					rows = append(rows, crlRow{form: form, chain: chain, revoked: revoked, state: state})
				}
			}
		}
	}
	return rows
}

// crls returns the CRLs a row loads: first the CRL of the CA whose verdict
// the row is about (the leaf's issuer, or the root when the intermediate is
// revoked), in the state the row names, then the CRLs of the chain's other
// CAs, current. "missing" leaves out the root's CRL: for root>int>leaf only
// the intermediate's CRL is loaded, and for root>leaf that CRL covers no CA
// of the chain.
func (w *crlWorld) crls(r crlRow) (subject []byte, others [][]byte) {
	subjectCA, otherCA := "root", "inter"
	if r.chain == "root>int>leaf" && r.revoked != "intermediate" {
		subjectCA, otherCA = "inter", "root"
	}
	kind := "clean"
	if r.revoked != "none" {
		kind = "revoked"
	}
	if r.state == "missing" {
		if r.chain == "root>leaf" {
			return nil, [][]byte{w.crl["inter-clean"]}
		}
		if r.revoked == "leaf" {
			return w.crl["inter-revoked"], nil
		}
		return w.crl["inter-clean"], nil
	}
	switch r.state {
	case "current":
		subject = w.crl[subjectCA+"-"+kind]
	case "expired":
		subject = w.crl[subjectCA+"-"+kind+"-expired"]
	case "other-CA":
		subject = w.crl["forged-"+subjectCA]
	}
	if r.chain == "root>int>leaf" {
		others = [][]byte{w.crl[otherCA+"-clean"]}
	}
	return subject, others
}

// setting returns the connection-string keys and environment variables that
// load the row's CRLs in its form.
func (w *crlWorld) setting(t *testing.T, r crlRow) (keys map[string]string, env map[string]string) {
	t.Helper()
	subject, others := w.crls(r)
	all := others
	if subject != nil {
		all = append([][]byte{subject}, others...)
	}
	file := func(crls [][]byte) string {
		return testutil.WritePEM(t, t.TempDir(), "crl.pem", bytes.Join(crls, nil))
	}
	switch r.form {
	case "sslcrl":
		return map[string]string{"sslcrl": file(all)}, nil
	case "sslcrldir":
		return map[string]string{"sslcrldir": testutil.RehashDir(t, w.openssl, all...)}, nil
	case "both":
		return map[string]string{"sslcrl": file(all[:1]), "sslcrldir": testutil.RehashDir(t, w.openssl, all[1:]...)}, nil
	case "PGSSLCRL":
		return nil, map[string]string{"PGSSLCRL": file(all)}
	case "PGSSLCRLDIR":
		return nil, map[string]string{"PGSSLCRLDIR": testutil.RehashDir(t, w.openssl, all...)}
	}
	t.Fatalf("unknown form %q", r.form)
	return nil, nil
}

// TestCRLParityWithPsql is issue 19 item 3's differential matrix: every
// combination of crlRows is run through psql 15 (libpq, OpenSSL with
// X509_V_FLAG_CRL_CHECK|X509_V_FLAG_CRL_CHECK_ALL) and through pgsecure
// against one real PostgreSQL server; any disagreement fails. A refusal by
// pgsecure must wrap ErrUntrustedServer, and a revoked certificate's refusal
// must name its serial number.
func TestCRLParityWithPsql(t *testing.T) {
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	w := newCRLWorld(t)
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())

	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tpsql\tpgsecure\tpgsecure's error")
	accepted, refused := 0, 0
	served := ""
	rows := crlRows()
	if testing.Short() {
		rows = shortCRLRows(rows)
	}
	for i, r := range rows {
		if served != r.chain {
			chain, key := w.chainShort, w.leafShort.KeyPEM
			if r.chain == "root>int>leaf" {
				chain, key = w.chainLng, w.leafLong.KeyPEM
			}
			pg.SetServerCert(t, chain, key)
			served = r.chain
		}
		keys, env := w.setting(t, r)
		libpqOK, libpqOut := runPsqlCRL(t, psql, w.caFile, pg.Port, keys, env, nil)
		err := connectPgsecureCRL(t, w.caFile, pg.Port, keys, env)
		verdict := func(ok bool) string {
			if ok {
				return "accept"
			}
			return "refuse"
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		fmt.Fprintf(tw, "%03d %s\t%s\t%s\t%s\n", i+1, r, verdict(libpqOK), verdict(err == nil), msg)
		if libpqOK {
			accepted++
			assert.NoError(t, err, "row %d %s: psql accepts, pgsecure must too", i+1, r)
			continue
		}
		refused++
		// A CRL signed by another key fails in OpenSSL's EVP layer, which
		// libpq reports as "SSL error: EVP lib".
		onCert := strings.Contains(libpqOut, "certificate") || (r.state == "other-CA" && strings.Contains(libpqOut, "SSL error: EVP lib"))
		require.True(t, onCert, "row %d %s: psql must fail on the certificate, not on something else: %s", i+1, r, libpqOut)
		if assert.Error(t, err, "row %d %s: psql refuses (%s), pgsecure must too", i+1, r, strings.TrimSpace(libpqOut)) {
			assert.ErrorIs(t, err, pgsecure.ErrUntrustedServer, "row %d %s", i+1, r)
			assert.NotContains(t, err.Error(), appPassword)
			if r.revoked == "leaf" && r.state == "current" {
				leaf := w.leafShort
				if r.chain == "root>int>leaf" {
					leaf = w.leafLong
				}
				assert.Contains(t, err.Error(), serialHex(leaf.Cert.SerialNumber.Bytes()), "row %d %s: the refusal names the serial", i+1, r)
			}
		}
	}
	require.NoError(t, tw.Flush())
	t.Logf("CRL parity matrix, %d rows (psql accepted %d, refused %d):\n%s", accepted+refused, accepted, refused, table.String())
	if !testing.Short() {
		assert.Equal(t, 100, accepted+refused, "row count")
	}
	assert.NotZero(t, accepted, "some rows must connect, or the matrix proves nothing")
}

// shortCRLRows is the -short subset of the CRL matrix: every seventh row,
// which still mixes both chains, accepted and refused rows.
func shortCRLRows(rows []crlRow) []crlRow {
	var out []crlRow
	for i, r := range rows {
		if i%7 == 0 {
			out = append(out, r)
		}
	}
	return out
}

// serialHex spells a serial number as openssl prints it (upper-case hex).
func serialHex(b []byte) string { return strings.ToUpper(fmt.Sprintf("%x", b)) }

// connectPgsecureCRL opens one pgsecure connection to 127.0.0.1 with the
// given extra keys (in the URL) and environment variables.
func connectPgsecureCRL(t *testing.T, caFile string, port int, keys, env map[string]string) error {
	t.Helper()
	for _, k := range []string{"PGSSLCRL", "PGSSLCRLDIR"} {
		t.Setenv(k, env[k])
	}
	var q []string
	for k, v := range keys {
		q = append(q, k+"="+v)
	}
	ctx := ctxT(t, 30*time.Second)
	cfg, err := pgsecure.NewBuilder(dsn("127.0.0.1", port, strings.Join(q, "&"))).RootCAFile(caFile).Logger(quiet).Config(ctx)
	if err != nil {
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	return pool.Ping(ctx)
}

// TestCRLReloadedWhilePoolRuns: a pool checks CRLs given by CRLFiles or
// CRLDir; when the CRL on disk is replaced by one that revokes the server
// certificate, the pool's next new connection is refused, naming the serial,
// without rebuilding the pool.
func TestCRLReloadedWhilePoolRuns(t *testing.T) {
	t.Parallel()
	w := newCRLWorld(t)
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	pg.SetServerCert(t, w.chainShort, w.leafShort.KeyPEM)
	serial := serialHex(w.leafShort.Cert.SerialNumber.Bytes())

	for _, form := range []string{"CRLFiles", "CRLDir"} {
		t.Run(form, func(t *testing.T) {
			ctx := ctxT(t, time.Minute)
			b := pgsecure.NewBuilder(dsn("127.0.0.1", pg.Port, "")).RootCAFile(w.caFile).Logger(quiet)
			var replace func()
			switch form {
			case "CRLFiles":
				file := testutil.WritePEM(t, t.TempDir(), "crl.pem", w.crl["root-clean"])
				b.CRLFiles(file)
				replace = func() { writeReplacing(t, file, w.crl["root-revoked"]) }
			case "CRLDir":
				dir := testutil.RehashDir(t, w.openssl, w.crl["root-clean"])
				b.CRLDir(dir)
				replace = func() {
					entries, err := os.ReadDir(dir)
					require.NoError(t, err)
					for _, e := range entries {
						if strings.Contains(e.Name(), ".r") {
							writeReplacing(t, dir+"/"+e.Name(), w.crl["root-revoked"])
						}
					}
				}
			}
			pool, err := b.Build(ctx)
			require.NoError(t, err, "the certificate is not revoked yet")
			defer pool.Close()
			require.NoError(t, pool.Ping(ctx))

			replace()
			pool.Reset() // drop idle connections: the next Ping opens a new one
			err = pool.Ping(ctx)
			require.ErrorIs(t, err, pgsecure.ErrUntrustedServer, "the replaced CRL revokes the server certificate")
			assert.Contains(t, err.Error(), "serial "+serial)
		})
	}
}

// writeReplacing replaces path atomically (write a sibling, rename), as a
// CRL distribution job would.
func writeReplacing(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".new"
	require.NoError(t, os.WriteFile(tmp, content, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// past is d before now.
func past(d time.Duration) time.Time { return time.Now().Add(-d) }

// TestCRLExpiringWarnsOnce: a pool whose CRL is close to its nextUpdate
// (under a quarter of its validity left) logs one warning naming the CRL's
// issuer and file, however many connections it opens, as it warns about a
// certificate close to expiry.
func TestCRLExpiringWarnsOnce(t *testing.T) {
	t.Parallel()
	openssl := testutil.RequireTool(t, "openssl", "openssl")
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	now := time.Now()
	crl := testutil.WritePEM(t, t.TempDir(), "ca.crl",
		testutil.NewOpenSSLCA(t, openssl, pki.CA).CRL(t, now.Add(-3*time.Hour), now.Add(30*time.Minute)))
	var logs testutil.LogBuffer
	ctx := ctxT(t, time.Minute)
	pool, err := pgsecure.NewBuilder(dsn("127.0.0.1", pg.Port, "sslcrl="+crl)).RootCAFile(pki.CAFile).
		Logger(slog.New(slog.NewTextHandler(&logs, nil))).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()
	for range 3 {
		pool.Reset()
		require.NoError(t, pool.Ping(ctx))
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "certificate revocation list expires soon"), logs.String())
	assert.Contains(t, logs.String(), "file="+crl)
	assert.Contains(t, logs.String(), `issuer="`+pki.CA.Cert.Subject.String()+`"`)
}

// TestCRLEdgesAgainstPsql runs the CRL settings docs/threat-model.md's Limits section
// describes through psql and pgsecure and asserts both verdicts: where they
// agree, and the documented differences (pgsecure refuses a CRL setting it
// cannot load, which libpq may skip silently, and never reads
// ~/.postgresql/root.crl).
func TestCRLEdgesAgainstPsql(t *testing.T) {
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	w := newCRLWorld(t)
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	pg.SetServerCert(t, w.chainShort, w.leafShort.KeyPEM)
	missing := t.TempDir() + "/missing"
	certOnly := testutil.WritePEM(t, t.TempDir(), "cert.pem", w.root.CertPEM)
	both := testutil.WritePEM(t, t.TempDir(), "both.pem", append(append([]byte{}, w.root.CertPEM...), w.crl["root-clean"]...))
	emptyDir := t.TempDir()
	rootDir := testutil.RehashDir(t, w.openssl, w.crl["root-clean"])
	file := func(crls ...[]byte) string {
		return testutil.WritePEM(t, t.TempDir(), "crl.pem", bytes.Join(crls, nil))
	}
	now := time.Now()
	// Of two CRLs of one CA, OpenSSL uses the one with the newer thisUpdate.
	clean := testutil.NewOpenSSLCA(t, w.openssl, w.root.CA)
	cleanOld, cleanNew := clean.CRL(t, now.Add(-2*time.Hour), now.Add(24*time.Hour)), clean.CRL(t, now.Add(-time.Minute), now.Add(24*time.Hour))
	revoking := testutil.NewOpenSSLCA(t, w.openssl, w.root.CA)
	revoking.Revoke(t, w.leafShort.CertPEM, "")
	revokedOld, revokedNew := revoking.CRL(t, now.Add(-2*time.Hour), now.Add(24*time.Hour)), revoking.CRL(t, now.Add(-time.Minute), now.Add(24*time.Hour))
	notYet := clean.CRL(t, now.Add(time.Hour), now.Add(24*time.Hour))
	withReason := func(reason string) []byte {
		ca := testutil.NewOpenSSLCA(t, w.openssl, w.root.CA)
		ca.Revoke(t, w.leafShort.CertPEM, reason)
		return ca.CRL(t, time.Time{}, time.Time{})
	}

	for _, c := range []struct {
		name           string
		keys           map[string]string
		homeCRL        []byte // written to ~/.postgresql/root.crl for psql
		psql, pgsecure string // accept, refuse, config (pgsecure refuses the configuration)
	}{
		{name: "sslcrl missing", keys: map[string]string{"sslcrl": missing}, psql: "accept", pgsecure: "config"},
		{name: "sslcrl holding a certificate only", keys: map[string]string{"sslcrl": certOnly}, psql: "refuse", pgsecure: "config"},
		{name: "sslcrl holding a certificate and the CRL", keys: map[string]string{"sslcrl": both}, psql: "accept", pgsecure: "accept"},
		{name: "sslcrldir missing", keys: map[string]string{"sslcrldir": missing}, psql: "refuse", pgsecure: "config"},
		{name: "sslcrldir empty", keys: map[string]string{"sslcrldir": emptyDir}, psql: "refuse", pgsecure: "refuse"},
		{name: "sslcrldir two directories", keys: map[string]string{"sslcrldir": emptyDir + ":" + rootDir}, psql: "accept", pgsecure: "accept"},
		{name: "~/.postgresql/root.crl revoking the server", homeCRL: w.crl["root-revoked"], psql: "refuse", pgsecure: "accept"},
		{name: "newer clean CRL after an older revoking one", keys: map[string]string{"sslcrl": file(revokedOld, cleanNew)}, psql: "accept", pgsecure: "accept"},
		{name: "newer revoking CRL after an older clean one", keys: map[string]string{"sslcrl": file(cleanOld, revokedNew)}, psql: "refuse", pgsecure: "refuse"},
		{name: "newer clean CRL before an older revoking one", keys: map[string]string{"sslcrl": file(cleanNew, revokedOld)}, psql: "accept", pgsecure: "accept"},
		{name: "expired CRL beside a current one", keys: map[string]string{"sslcrl": file(w.crl["root-clean-expired"], w.crl["root-clean"])}, psql: "accept", pgsecure: "accept"},
		{name: "CRL not valid yet", keys: map[string]string{"sslcrl": file(notYet)}, psql: "refuse", pgsecure: "refuse"},
		{name: "entry with reason removeFromCRL", keys: map[string]string{"sslcrl": file(withReason("removeFromCRL"))}, psql: "accept", pgsecure: "accept"},
		{name: "entry with reason certificateHold", keys: map[string]string{"sslcrl": file(withReason("certificateHold"))}, psql: "refuse", pgsecure: "refuse"},
		{name: "entry with reason keyCompromise", keys: map[string]string{"sslcrl": file(withReason("keyCompromise"))}, psql: "refuse", pgsecure: "refuse"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok, out := runPsqlCRL(t, psql, w.caFile, pg.Port, c.keys, nil, c.homeCRL)
			got := map[bool]string{true: "accept", false: "refuse"}[ok]
			assert.Equal(t, c.psql, got, "psql: %s", out)
			err := connectPgsecureCRL(t, w.caFile, pg.Port, c.keys, nil)
			switch c.pgsecure {
			case "accept":
				assert.NoError(t, err)
			case "refuse":
				assert.ErrorIs(t, err, pgsecure.ErrUntrustedServer)
			case "config":
				assert.ErrorIs(t, err, pgsecure.ErrInsecureConfig)
			}
		})
	}
}

// runPsqlCRL connects to 127.0.0.1 with psql, the given extra keys and
// environment, and reports whether SELECT 1 succeeded, with psql's output.
// HOME is a new directory holding ~/.postgresql/root.crl only when homeCRL
// is given.
func runPsqlCRL(t *testing.T, psql, caFile string, port int, keys, env map[string]string, homeCRL []byte) (bool, string) {
	t.Helper()
	home := t.TempDir()
	if homeCRL != nil {
		require.NoError(t, os.MkdirAll(home+"/.postgresql", 0o700))
		testutil.WritePEM(t, home+"/.postgresql", "root.crl", homeCRL)
	}
	conn := "host=127.0.0.1 port=" + strconv.Itoa(port) + " user=" + appUser + " dbname=postgres sslmode=verify-full sslrootcert=" + caFile
	for k, v := range keys {
		conn += " " + k + "=" + v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, "-w", "-X", "-A", "-t", "-c", "SELECT 1", conn)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LC_ALL=C", "PGPASSWORD=" + appPassword, "PGCONNECT_TIMEOUT=10"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return err == nil && strings.TrimSpace(string(out)) == "1", string(out)
}

// TestCRLExtensionsAgainstPsql runs CRLs carrying the extensions that change
// OpenSSL's choice of CRL through psql and pgsecure, which must agree. These
// CRLs are made with crypto/x509 (openssl ca would need a configuration
// section per extension): an issuingDistributionPoint limited to user or CA
// certificates, to a distribution point, or marked indirect; an unknown
// critical extension; an authority key identifier naming another key.
func TestCRLExtensionsAgainstPsql(t *testing.T) {
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	w := newCRLWorld(t)
	pki := testutil.NewPKI(t)
	pg := startServer(t, pki, testutil.LocalServerOptions())
	pg.SetServerCert(t, w.chainShort, w.leafShort.KeyPEM)
	now := time.Now()
	goCRL := func(signer *certgen.CA, exts ...pkix.Extension) []byte {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(now.UnixNano()), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour),
			ExtraExtensions: exts,
		}, signer.Cert, signer.Key)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	}
	idp := func(critical bool, der ...byte) pkix.Extension {
		return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: critical, Value: append([]byte{0x30, byte(len(der))}, der...)}
	}
	uri := []byte("http://crl.example.test/root.crl")
	dp := append([]byte{0xa0, byte(len(uri) + 4), 0xa0, byte(len(uri) + 2), 0x86, byte(len(uri))}, uri...)
	sameName, err := certgen.NewCA(w.root.Cert.Subject.CommonName, certgen.ECDSAP256)
	require.NoError(t, err)

	for _, c := range []struct {
		name string
		crl  []byte
		psql bool
	}{
		{name: "plain", crl: goCRL(w.root.CA), psql: true},
		{name: "IDP onlyContainsUserCerts (the root itself is a CA)", crl: goCRL(w.root.CA, idp(true, 0x81, 0x01, 0xff)), psql: false},
		{name: "IDP onlyContainsCACerts (the leaf is not)", crl: goCRL(w.root.CA, idp(true, 0x82, 0x01, 0xff)), psql: false},
		{name: "IDP indirectCRL", crl: goCRL(w.root.CA, idp(true, 0x84, 0x01, 0xff)), psql: false},
		{name: "IDP onlySomeReasons", crl: goCRL(w.root.CA, idp(true, 0x83, 0x02, 0x07, 0x80)), psql: false},
		{name: "IDP distribution point the certificates do not name", crl: goCRL(w.root.CA, idp(true, dp...)), psql: false},
		{name: "IDP with no field set", crl: goCRL(w.root.CA, idp(true)), psql: true},
		{name: "unknown critical extension", crl: goCRL(w.root.CA, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{0x05, 0x00}}), psql: false},
		{name: "unknown non-critical extension", crl: goCRL(w.root.CA, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: []byte{0x05, 0x00}}), psql: true},
		{name: "same issuer name, authority key identifier of another key", crl: goCRL(sameName), psql: false},
	} {
		t.Run(c.name, func(t *testing.T) {
			keys := map[string]string{"sslcrl": testutil.WritePEM(t, t.TempDir(), "crl.pem", c.crl)}
			ok, out := runPsqlCRL(t, psql, w.caFile, pg.Port, keys, nil, nil)
			require.Equal(t, c.psql, ok, "psql: %s", out)
			err := connectPgsecureCRL(t, w.caFile, pg.Port, keys, nil)
			if c.psql {
				assert.NoError(t, err, "psql accepts")
			} else {
				assert.ErrorIs(t, err, pgsecure.ErrUntrustedServer, "psql refuses: %s", out)
			}
		})
	}
}
