package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
)

// Values of --self-signed: how to renew a self-signed certificate, which
// clients pin as its own CA (the guide's `openssl req -x509`).
const (
	selfSignedReissue = "reissue" // a new self-signed certificate: same key, subject, names
	selfSignedMigrate = "migrate" // a CA in --ca-dir and a bundle (CA + old certificate) for the clients
	selfSignedSwitch  = "switch"  // once clients pin the bundle: a certificate from that CA in place
)

// bundleName is the file `--self-signed migrate` writes in --ca-dir: the new
// CA and the self-signed certificates clients pin today, for the clients to
// pin while the servers switch.
const bundleName = "ca-bundle.crt"

// isSelfSigned reports whether c is its own issuer, signature included (a
// self-signed certificate need not be marked as a CA).
func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// renewSelfSigned handles --self-signed, and a self-signed certificate given
// without it. Without the flag nothing is chosen for the operator: either way
// every client must be given a new file (the reissued certificate, or the
// bundle), and renew runs unattended from cron, where a silent choice would
// surface only as clients failing to verify.
func renewSelfSigned(o renewOptions, env func(string) (string, bool), leaf *x509.Certificate, chainRest []byte, key crypto.Signer, out io.Writer) (int, error) {
	selfSigned := isSelfSigned(leaf)
	switch {
	case o.selfSigned == "":
		return exitUsage, fmt.Errorf("%w: %s is self-signed (subject and issuer %q): clients pin this very file as their CA "+
			"(sslrootcert), so a renewed certificate must reach every client. Choose how:\n"+
			"  --self-signed reissue                a new self-signed certificate, same key, subject and names; then copy it to every client\n"+
			"  --self-signed migrate --ca-dir DIR   (recommended) move to a CA: create it, give clients a bundle of the old certificate and\n"+
			"                                       the CA, then --self-signed switch the server; later renewals need no client change",
			errRenewUsage, o.cert, leaf.Subject.String())
	case o.selfSigned == selfSignedSwitch:
		return switchToCA(o, env, leaf, chainRest, key, out)
	case !selfSigned:
		return exitUsage, fmt.Errorf("%w: --self-signed %s is for self-signed certificates; %s was issued by %q: renew it with --ca-dir",
			errRenewUsage, o.selfSigned, o.cert, leaf.Issuer.String())
	case o.selfSigned == selfSignedMigrate:
		return exitUsageOr(migrateToCA(o, leaf, out))
	}
	// reissue: the renewed file is its own CA; --ca names what the server
	// presents before the reload (default: the file too).
	presentedCA := o.ca
	o.ca = o.cert
	if o.reload != "" {
		// Until the reload the server presents the old certificate, which
		// the renewed file does not verify (OpenSSL and Go match a
		// self-signed certificate exactly): the reload trusts the old one.
		f, err := os.CreateTemp("", "pgsecure-old-*.crt")
		if err != nil {
			return exitInsecure, err
		}
		defer os.Remove(f.Name())
		_, err = f.Write(certgen.EncodeCertPEM(leaf.Raw))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return exitInsecure, err
		}
		o.reloadCA = f.Name()
	}
	current, renewed, err := renewIfDue(o, leaf, out, func(k crypto.Signer) (*x509.Certificate, []byte, error) {
		return reissueSelfSigned(leaf, k, o.days)
	}, chainRest, key)
	if err != nil {
		return exitInsecure, err
	}
	if renewed {
		printReissueSteps(o, current, out)
	} else {
		o.reloadCA = presentedCA // not renewed now: the server may still present an earlier one, which --ca names
	}
	if o.reload == "" {
		return exitOK, nil
	}
	return reloadAndVerify(o, env, current, renewed, out)
}

func exitUsageOr(err error) (int, error) {
	if err != nil {
		return exitUsage, err
	}
	return exitOK, nil
}

// reissueSelfSigned signs a certificate like old (renewalTemplate) with key
// itself, keeping old's basic constraints and key usages.
func reissueSelfSigned(old *x509.Certificate, key crypto.Signer, days int) (*x509.Certificate, []byte, error) {
	tmpl, err := renewalTemplate(old, days)
	if err != nil {
		return nil, nil, err
	}
	tmpl.BasicConstraintsValid, tmpl.IsCA = old.BasicConstraintsValid, old.IsCA
	tmpl.MaxPathLen, tmpl.MaxPathLenZero = old.MaxPathLen, old.MaxPathLenZero
	tmpl.KeyUsage, tmpl.ExtKeyUsage = old.KeyUsage, old.ExtKeyUsage
	if samePublicKey(old.PublicKey, key.Public()) {
		tmpl.SubjectKeyId = old.SubjectKeyId
	}
	return signCert(tmpl, tmpl, key.Public(), key)
}

// renewalTemplate is old's subject and names, a new random serial, valid
// from an hour ago for days. A server certificate naming its host only in
// the Common Name (the guide's) also gets it as a subject alternative name:
// libpq matches the same name, and Go, which ignores the Common Name, too.
func renewalTemplate(old *x509.Certificate, days int) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:   serial.Add(serial, big.NewInt(1)), // never zero
		RawSubject:     old.RawSubject,
		DNSNames:       old.DNSNames,
		IPAddresses:    old.IPAddresses,
		URIs:           old.URIs,
		EmailAddresses: old.EmailAddresses,
		NotBefore:      now.Add(-time.Hour),
		NotAfter:       now.Add(time.Duration(days) * 24 * time.Hour),
	}
	if cn := old.Subject.CommonName; len(old.DNSNames) == 0 && len(old.IPAddresses) == 0 && cn != "" && hasServerAuth(old) {
		if ip := net.ParseIP(cn); ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		} else {
			tmpl.DNSNames = []string{cn}
		}
	}
	return tmpl, nil
}

func signCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, []byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, nil, fmt.Errorf("pgsecure: signing the renewed certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// printReissueSteps tells the operator how the reissued certificate reaches
// the clients, which pin the file itself.
func printReissueSteps(o renewOptions, c *x509.Certificate, out io.Writer) {
	reload := "reload PostgreSQL so that it presents the new certificate: SELECT pg_reload_conf(); or run this command\n" +
		"     again with --reload DSN --ca OLD, OLD a copy of the certificate before this renewal (it reloads and checks)"
	if o.reload != "" {
		reload = "reload PostgreSQL so that it presents the new certificate: --reload does it now (below)"
	}
	fmt.Fprintf(out, `
clients pin %[1]s itself (a self-signed certificate is its own CA): a client verifies the server only against a copy
of it. libpq (OpenSSL) uses the first certificate of a subject in its sslrootcert file, so no file trusts both the old
and the new one: from the reload on, a client holding the old file fails to verify the server until it has the new one.
  1. %[2]s
  2. right after, copy %[1]s to every client, over the file its sslrootcert names
     (the PGSSLROOTCERT variable, the DSN's sslrootcert=, or libpq's default ~/.postgresql/root.crt)
  3. verify from each client, with its copy:
     pgsecure check --ca /path/to/the/copy "postgres://USER@%[3]s:5432/DBNAME"
To renew with no such window, and no copying at later renewals, move to a CA instead:
  pgsecure certs renew --self-signed migrate --ca-dir DIR --cert %[1]s --key %[4]s
`, o.cert, reload, hostOf(c), o.key)
}

// migrateToCA creates the CA in o.caDir (or uses the one there) and writes
// the bundle the clients pin during the switch. Nothing on the server changes.
func migrateToCA(o renewOptions, leaf *x509.Certificate, out io.Writer) error {
	switch {
	case o.caDir == "":
		return fmt.Errorf("%w: --self-signed migrate needs --ca-dir DIR: where the new CA is created (or an existing one is used)", errRenewUsage)
	case o.reload != "" || o.newKey:
		return fmt.Errorf("%w: --self-signed migrate does not change the server: --reload and --new-key belong to --self-signed switch", errRenewUsage)
	}
	ca, err := loadCA(o.caDir)
	step1 := "using the CA already in " + o.caDir
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(o.caDir, "ca.crt")); !errors.Is(statErr, fs.ErrNotExist) {
			return err // a CA is there but unusable: never replace it
		}
		if _, err := writeCA(certsOptions{out: o.caDir, cn: "pgsecure CA"}); err != nil {
			return err
		}
		if ca, err = loadCA(o.caDir); err != nil {
			return err
		}
		step1 = fmt.Sprintf("created the CA: %s, and its key %s (keep the key off the servers)",
			filepath.Join(o.caDir, "ca.crt"), filepath.Join(o.caDir, caKeyDir, "ca.key"))
	}
	bundle := filepath.Join(o.caDir, bundleName)
	if err := writeBundle(bundle, ca.Cert, leaf); err != nil {
		return err
	}
	caFile, host := filepath.Join(o.caDir, "ca.crt"), hostOf(leaf)
	fmt.Fprintf(out, `moving %[1]s from self-signed to the CA in %[2]s; the server is not changed yet.
step 1 (done): %[3]s
step 2 (done): wrote %[4]s: the new CA, then the self-signed certificate clients pin today
step 3 (every client): replace the file the client's sslrootcert names (PGSSLROOTCERT, the DSN's sslrootcert=,
        or ~/.postgresql/root.crt) by a copy of %[4]s, and check that it still verifies the server as it is:
          pgsecure check --ca %[4]s "postgres://USER@%[5]s:5432/DBNAME"
step 4 (once every client has the bundle): switch the server to a certificate from the CA, same key and names:
          pgsecure certs renew --self-signed switch --ca-dir %[2]s --cert %[1]s --key %[6]s --reload "postgres://SUPERUSER@%[5]s:5432/postgres"
        clients pinning the bundle verify the server before and after the switch.
step 5 (after the switch): replace the bundle on every client by %[7]s alone, which drops the old self-signed
        certificate, and check:
          pgsecure check --ca %[7]s "postgres://USER@%[5]s:5432/DBNAME"
`, o.cert, o.caDir, step1, bundle, host, o.key, caFile)
	return nil
}

// writeBundle writes path with the CA first, then the certificates already
// in it, then leaf, each once: migrating several servers to one CA gathers
// all their old certificates in one bundle.
func writeBundle(path string, ca, leaf *x509.Certificate) error {
	certs := []*x509.Certificate{ca}
	if data, err := os.ReadFile(path); err == nil {
		for rest := data; ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return fmt.Errorf("%w: %s: %w; remove it and run again", errRenewUsage, path, err)
			}
			certs = append(certs, c)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	certs = append(certs, leaf)
	var buf bytes.Buffer
	seen := map[string]bool{}
	for _, c := range certs {
		if !seen[string(c.Raw)] {
			seen[string(c.Raw)] = true
			buf.Write(certgen.EncodeCertPEM(c.Raw))
		}
	}
	info, _ := os.Stat(path)
	tmp, err := stageFile(path, buf.Bytes(), certgen.CertFileMode, info)
	if err != nil {
		return err
	}
	return commitFile(tmp, path)
}

// bundleHolds reports whether the bundle at path holds c.
func bundleHolds(path string, c *x509.Certificate) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return false
		}
		if bytes.Equal(block.Bytes, c.Raw) {
			return true
		}
	}
}

// switchToCA replaces the self-signed certificate in o.cert by one from the
// CA in o.caDir: same subject and names, a server certificate (not a CA), the
// same key unless --new-key. It refuses unless `--self-signed migrate` wrote
// the bundle with this certificate, the proof that the clients were given a
// way to trust both.
func switchToCA(o renewOptions, env func(string) (string, bool), leaf *x509.Certificate, chainRest []byte, key crypto.Signer, out io.Writer) (int, error) {
	if o.caDir == "" {
		return exitUsage, fmt.Errorf("%w: --self-signed switch needs --ca-dir DIR, the CA --self-signed migrate created", errRenewUsage)
	}
	bundle, caFile := filepath.Join(o.caDir, bundleName), filepath.Join(o.caDir, "ca.crt")
	if o.ca == "" {
		o.ca = bundle
	}
	ca, err := loadCA(o.caDir)
	if err == nil && !isSelfSigned(leaf) && leaf.CheckSignatureFrom(ca.Cert) == nil {
		fmt.Fprintf(out, "%s is already issued by the CA in %s: nothing to switch (renew it with --ca-dir alone from now on)\n", o.cert, o.caDir)
		if o.reload == "" {
			return exitOK, nil
		}
		return reloadAndVerify(o, env, leaf, false, out)
	}
	if !isSelfSigned(leaf) {
		return exitUsage, fmt.Errorf("%w: %s is neither self-signed nor issued by the CA in %s: --self-signed switch replaces a self-signed certificate",
			errRenewUsage, o.cert, o.caDir)
	}
	if err != nil || !bundleHolds(bundle, leaf) {
		return exitUsage, fmt.Errorf("%w: no %s holding %s: run --self-signed migrate --ca-dir %s first and give every client the bundle; "+
			"switching before would leave them unable to verify the server", errRenewUsage, bundle, o.cert, o.caDir)
	}
	o.force = true // the switch is the operator's explicit step, due or not
	current, _, err := renewIfDue(o, leaf, out, func(k crypto.Signer) (*x509.Certificate, []byte, error) {
		tmpl, err := renewalTemplate(leaf, o.days)
		if err != nil {
			return nil, nil, err
		}
		tmpl.BasicConstraintsValid, tmpl.ExtKeyUsage = true, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if _, ok := k.Public().(*rsa.PublicKey); ok {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
		return signByCA(ca, tmpl, k.Public())
	}, chainRest, key)
	if err != nil {
		return exitInsecure, err
	}
	host := hostOf(current)
	reload := "        now reload PostgreSQL (SELECT pg_reload_conf();) and check with the bundle:\n" +
		"          pgsecure check --ca " + bundle + " \"postgres://USER@" + host + ":5432/DBNAME\"\n"
	if o.reload != "" {
		reload = "        --reload reloads the server now and checks that it presents the new certificate (below)\n"
	}
	fmt.Fprintf(out, `step 4 (done): %[1]s is now issued by the CA in %[2]s (same subject and names)
%[3]sstep 5 (after the reload): replace the bundle on every client by %[4]s alone, which drops the old self-signed
        certificate, and check:
          pgsecure check --ca %[4]s "postgres://USER@%[5]s:5432/DBNAME"
        once every server moved to the CA, %[7]s is no longer needed: remove it.
from now on renew it from the CA, e.g. nightly from cron:
  pgsecure certs renew --ca-dir %[2]s --cert %[1]s --key %[6]s --reload "postgres://SUPERUSER@%[5]s:5432/postgres"
`, o.cert, o.caDir, reload, caFile, host, o.key, bundle)
	if o.reload == "" {
		return exitOK, nil
	}
	return reloadAndVerify(o, env, current, true, out)
}

// hostOf is the first name c is valid for (its Common Name when it has no
// other), for the printed commands.
func hostOf(c *x509.Certificate) string {
	switch {
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.IPAddresses) > 0:
		return hostForURL(c.IPAddresses[0].String())
	case c.Subject.CommonName != "":
		return hostForURL(c.Subject.CommonName)
	}
	return "HOST"
}
