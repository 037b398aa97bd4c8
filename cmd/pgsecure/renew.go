package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgsecure/pgsecure/internal/certgen"
)

type renewOptions struct {
	caDir, cert, key, reload, ca string
	selfSigned                   string // --self-signed: reissue, migrate or switch
	reloadCA                     string // trust for the connection that reloads, when not ca (the certificate it presents before)
	within, days                 int
	newKey, force                bool
	timeout                      time.Duration
}

func runRenew(args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	var o renewOptions
	set := flag.NewFlagSet("pgsecure certs renew", flag.ContinueOnError)
	set.SetOutput(stderr)
	set.StringVar(&o.caDir, "ca-dir", "", "directory holding ca.crt and private/ca.key from `certs ca` (required, except with --self-signed reissue)")
	set.StringVar(&o.cert, "cert", "", "certificate `FILE` to renew, in place (required)")
	set.StringVar(&o.key, "key", "", "its private key `FILE` (required)")
	set.IntVar(&o.within, "within", 30, "renew only when the certificate expires within `N` days")
	set.IntVar(&o.days, "days", 365, "validity of the renewed certificate in days")
	set.BoolVar(&o.newKey, "new-key", false, "also replace the key (same type); default: keep it")
	set.BoolVar(&o.force, "force", false, "renew even when not due")
	set.StringVar(&o.reload, "reload", "", "`DSN` of the server using the certificate: run SELECT pg_reload_conf() there, then check that it presents the new certificate")
	set.StringVar(&o.ca, "ca", "", "CA `FILE` to verify the server with for --reload (default: ca.crt in --ca-dir; with --self-signed switch, the bundle;\n"+
		"with --self-signed reissue: the certificate the server presents before the reload, by default the renewed one)")
	set.StringVar(&o.selfSigned, "self-signed", "", "renew a self-signed certificate (the guide's openssl req -x509) `HOW`: reissue (a new self-signed one, same key and names;\n"+
		"clients need the new file), migrate (create a CA in --ca-dir and a bundle of old certificate + CA for the clients), or\n"+
		"switch (once every client pins the bundle: replace it by a certificate from that CA)")
	set.DurationVar(&o.timeout, "timeout", 30*time.Second, "time allowed to --reload, including the check")
	set.Usage = func() {
		fmt.Fprint(stderr, "usage: pgsecure certs renew --ca-dir DIR --cert FILE --key FILE [flags]\n\n"+
			"Renews a certificate issued by the CA in --ca-dir when it expires within --within days, keeping its subject,\n"+
			"names and usage. Safe to run from cron or a systemd timer: a second run does nothing.\n"+
			"A self-signed certificate (pinned by clients as its own CA) needs --self-signed reissue|migrate|switch.\n\n")
		set.PrintDefaults()
		fmt.Fprint(stderr, "\n"+exitCodeHelp)
	}
	if code, done := parseCertsFlags(set, "renew", args, stderr); done {
		return code
	}
	switch {
	case o.cert == "" || o.key == "":
		return certsError(stderr, "renew", "--cert and --key are required, and --ca-dir except with --self-signed reissue")
	case o.within < 0 || o.days <= 0 || o.timeout <= 0:
		return certsError(stderr, "renew", "--within must be >= 0, --days and --timeout positive")
	case o.selfSigned != "" && o.selfSigned != selfSignedReissue && o.selfSigned != selfSignedMigrate && o.selfSigned != selfSignedSwitch:
		return certsError(stderr, "renew", "--self-signed is reissue, migrate or switch, not %q", o.selfSigned)
	}
	o.cert, o.key = absPath(o.cert), absPath(o.key)
	if o.caDir != "" {
		o.caDir = absPath(o.caDir)
	}
	code, err := renew(o, env, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "pgsecure certs renew: %v\n", err)
	}
	return code
}

// errRenewUsage marks errors that are the caller's to fix (exit 2).
var errRenewUsage = errors.New("pgsecure: cannot renew")

// renew renews o.cert when due and, with --reload, makes the server use it.
func renew(o renewOptions, env func(string) (string, bool), out io.Writer) (int, error) {
	if done, err := finishInterruptedSwap(o.cert, o.key); errors.Is(err, errRenewUsage) {
		return exitUsage, err
	} else if err != nil {
		return exitInsecure, err
	} else if done {
		fmt.Fprintf(out, "completed an interrupted renewal: %s now matches %s\n", o.cert, o.key)
	}
	leaf, chainRest, err := readLeaf(o.cert)
	if err != nil {
		return exitUsage, err
	}
	keyPEM, err := os.ReadFile(o.key)
	if err != nil {
		return exitUsage, fmt.Errorf("%w: %w", errRenewUsage, err)
	}
	key, err := certgen.ParseKeyPEM(keyPEM)
	if err != nil {
		return exitUsage, fmt.Errorf("%w: %s: %w", errRenewUsage, o.key, err)
	}
	if !samePublicKey(leaf.PublicKey, key.Public()) {
		return exitUsage, fmt.Errorf("%w: the key in %s does not belong to the certificate in %s", errRenewUsage, o.key, o.cert)
	}
	if o.reload != "" && !hasServerAuth(leaf) {
		return exitUsage, fmt.Errorf("%w: --reload is for server certificates; %s is not one", errRenewUsage, o.cert)
	}
	if o.selfSigned != "" || isSelfSigned(leaf) {
		return renewSelfSigned(o, env, leaf, chainRest, key, out)
	}
	if o.caDir == "" {
		return exitUsage, fmt.Errorf("%w: --ca-dir is required: the directory of the CA that issued %s (%q)", errRenewUsage, o.cert, leaf.Issuer.String())
	}
	if o.ca == "" {
		o.ca = filepath.Join(o.caDir, "ca.crt")
	}
	ca, err := loadCA(o.caDir)
	if err != nil {
		return exitUsage, err
	}
	if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
		return exitUsage, fmt.Errorf("%w: %s was not issued by the CA in %s (%q): renew it with the CA that issued it (%q)",
			errRenewUsage, o.cert, o.caDir, ca.Cert.Subject.String(), leaf.Issuer.String())
	}
	if !ca.Cert.NotAfter.After(time.Now()) {
		return exitUsage, fmt.Errorf("%w: the CA in %s expired on %s: create a new CA (pgsecure certs ca) and issue new certificates from it",
			errRenewUsage, o.caDir, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	}
	current, renewed, err := renewIfDue(o, leaf, out, func(k crypto.Signer) (*x509.Certificate, []byte, error) {
		c, p, err := reissue(ca, leaf, k.Public(), o.days)
		if err == nil && c.NotAfter.Equal(ca.Cert.NotAfter) {
			fmt.Fprintf(out, "warning: the renewed certificate ends when the CA does (%s): plan a new CA\n", ca.Cert.NotAfter.UTC().Format(time.DateOnly))
		}
		return c, p, err
	}, chainRest, key)
	if err != nil {
		return exitInsecure, err
	}
	if o.reload == "" {
		return exitOK, nil
	}
	return reloadAndVerify(o, env, current, renewed, out)
}

// issueFunc signs the renewed certificate for key (the kept or the new one)
// and returns it parsed and in PEM.
type issueFunc func(key crypto.Signer) (*x509.Certificate, []byte, error)

// renewIfDue renews leaf with issue when it expires within o.within days (or
// o.force) and returns the certificate now in o.cert and whether it renewed.
func renewIfDue(o renewOptions, leaf *x509.Certificate, out io.Writer, issue issueFunc, chainRest []byte, key crypto.Signer) (*x509.Certificate, bool, error) {
	if left := time.Until(leaf.NotAfter); left >= time.Duration(o.within)*24*time.Hour && !o.force {
		fmt.Fprintf(out, "%s expires in %d days (%s), not within %d days: nothing to do\n",
			o.cert, int(left.Hours()/24), leaf.NotAfter.UTC().Format(time.DateOnly), o.within)
		return leaf, false, nil
	}
	current, err := renewFiles(o, issue, chainRest, key, out)
	return current, err == nil, err
}

// renewFiles issues the new certificate and puts it (and a new key) in place.
//
// Keeping the key (the default), only the certificate file changes, in one
// rename(2): every reader sees the old pair or the new pair, each of which
// matches. With --new-key two files change and POSIX has no rename of two
// files at once, so the order matters:
//
//  1. both new files are written and synced next to their targets, the
//     certificate under a fixed name (.NAME.renew);
//  2. the key is renamed into place, then the certificate.
//
// Between the two renames (microseconds) the pair on disk does not match.
// PostgreSQL reads the files only at start and reload (--reload reloads
// after both renames; a reload that sees a mismatched pair keeps the old
// certificate in memory and logs it), and pgsecure clients reloading a
// client pair reject a mismatched one. If the process dies in between, the
// new key is in place and the staged certificate next to it: the next run
// finishes the swap (finishInterruptedSwap) before anything else. Renaming
// the key first means what can be left behind is a certificate (public), never
// a private key in a stray file.
func renewFiles(o renewOptions, issue issueFunc, chainRest []byte, key crypto.Signer, out io.Writer) (*x509.Certificate, error) {
	newKey := key
	if o.newKey {
		var err error
		if newKey, err = generateLike(key); err != nil {
			return nil, err
		}
	}
	leaf, leafPEM, err := issue(newKey)
	if err != nil {
		return nil, err
	}
	certInfo, err := os.Stat(o.cert)
	if err != nil {
		return nil, err
	}
	keyInfo, err := os.Stat(o.key)
	if err != nil {
		return nil, err
	}
	certTmp, err := stageFile(o.cert, append(leafPEM, chainRest...), certInfo.Mode().Perm(), certInfo)
	if err != nil {
		return nil, err
	}
	if !o.newKey {
		if err := commitFile(certTmp, o.cert); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "renewed %s: serial %s, valid until %s (same key %s)\n", o.cert, hexSerial(leaf.SerialNumber), leaf.NotAfter.UTC().Format(time.RFC3339), o.key)
		return leaf, nil
	}
	keyPEM, err := certgen.EncodeKeyPEM(newKey)
	if err != nil {
		_ = os.Remove(certTmp)
		return nil, err
	}
	staged := stagedCertPath(o.cert)
	if err := os.Rename(certTmp, staged); err != nil {
		_ = os.Remove(certTmp)
		return nil, fmt.Errorf("pgsecure: cannot stage %s: %w", staged, err)
	}
	keyTmp, err := stageFile(o.key, keyPEM, keyInfo.Mode().Perm()&0o640, keyInfo)
	if err != nil {
		_ = os.Remove(staged)
		return nil, err
	}
	if err := commitFile(keyTmp, o.key); err != nil {
		_ = os.Remove(staged)
		return nil, err
	}
	if err := commitFile(staged, o.cert); err != nil {
		return nil, fmt.Errorf("%w; run the same command again to finish the renewal", err)
	}
	fmt.Fprintf(out, "renewed %s: serial %s, valid until %s, with a new key in %s\n", o.cert, hexSerial(leaf.SerialNumber), leaf.NotAfter.UTC().Format(time.RFC3339), o.key)
	return leaf, nil
}

// stagedCertPath is where renewFiles stages a certificate during a key change.
func stagedCertPath(cert string) string {
	return filepath.Join(filepath.Dir(cert), "."+filepath.Base(cert)+".renew")
}

// finishInterruptedSwap completes a --new-key renewal that stopped between
// its two renames: a staged certificate that matches the key in place is
// moved onto the certificate file. A staged certificate that does not match
// (the run stopped before the key was renamed) is removed.
func finishInterruptedSwap(certPath, keyPath string) (bool, error) {
	staged := stagedCertPath(certPath)
	fi, err := os.Lstat(staged)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("%w: %s is not a regular file: remove it", errRenewUsage, staged)
	}
	leaf, _, err := readLeaf(staged)
	keyPEM, kerr := os.ReadFile(keyPath)
	var key crypto.Signer
	if kerr == nil {
		key, kerr = certgen.ParseKeyPEM(keyPEM)
	}
	if err != nil || kerr != nil || !samePublicKey(leaf.PublicKey, key.Public()) {
		return false, os.Remove(staged)
	}
	return true, commitFile(staged, certPath)
}

// readLeaf returns the first certificate of a PEM file and the PEM blocks
// after it (a chain), unchanged.
func readLeaf(path string) (*x509.Certificate, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errRenewUsage, err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%w: %s does not start with a PEM CERTIFICATE block", errRenewUsage, path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", errRenewUsage, path, err)
	}
	return c, rest, nil
}

// reissue signs a certificate like old (same subject, names, key usages)
// for pub, valid from an hour ago for days days (never past the CA).
func reissue(ca *certgen.CA, old *x509.Certificate, pub crypto.PublicKey, days int) (*x509.Certificate, []byte, error) {
	tmpl, err := renewalTemplate(old, days)
	if err != nil {
		return nil, nil, err
	}
	tmpl.BasicConstraintsValid, tmpl.KeyUsage, tmpl.ExtKeyUsage = true, old.KeyUsage, old.ExtKeyUsage
	return signByCA(ca, tmpl, pub)
}

// signByCA signs tmpl for pub with ca, ending no later than ca does.
func signByCA(ca *certgen.CA, tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, []byte, error) {
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	return signCert(tmpl, ca.Cert, pub, ca.Key)
}

// generateLike returns a new key of the same algorithm and size as k.
func generateLike(k crypto.Signer) (crypto.Signer, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return certgen.GenerateKey(certgen.ECDSAP256)
		}
	case *rsa.PrivateKey:
		switch k.N.BitLen() {
		case 2048:
			return certgen.GenerateKey(certgen.RSA2048)
		case 4096:
			return certgen.GenerateKey(certgen.RSA4096)
		}
	}
	return nil, fmt.Errorf("%w: --new-key makes ECDSA P-256, RSA 2048 and RSA 4096 keys only, not %T; renew without --new-key", errRenewUsage, k)
}

func samePublicKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

func hasServerAuth(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return len(c.ExtKeyUsage) == 0
}

// reloadAndVerify makes the server at o.reload load the certificate files
// (SELECT pg_reload_conf()) and checks, as `pgsecure check` does, that new
// connections are served want. A run that renewed nothing reloads only when
// the server does not present want yet (an earlier reload failed).
func reloadAndVerify(o renewOptions, env func(string) (string, bool), want *x509.Certificate, renewed bool, out io.Writer) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	co := checkOptions{ca: o.ca, timeout: o.timeout, audit: "off", noProbe: true, expiryDays: o.within}
	target := targetLabel(o.reload)
	if !renewed {
		if r := inspect(ctx, co, o.reload, env); presents(r, want) {
			fmt.Fprintf(out, "%s presents serial %s: nothing to do\n", target, hexSerial(want.SerialNumber))
			return exitOK, nil
		}
	}
	rco := co
	if o.reloadCA != "" {
		rco.ca = o.reloadCA
	}
	who := &checkReport{}
	if err := reloadServer(ctx, rco, env, o.reload, who); err != nil {
		code, hint := classify(err, true, true, who, o.timeout)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			hint = fmt.Sprintf("the role may not reload the configuration: as superuser, connected to database %q (the --reload DSN's: "+
				"function grants are per database), run GRANT EXECUTE ON FUNCTION pg_reload_conf() TO %s; or give --reload a superuser",
				who.Database, sqlIdent(who.User))
		}
		if o.selfSigned == selfSignedReissue && !renewed && code == exitInsecure {
			hint = fmt.Sprintf("the server still presents a certificate that %s does not verify, presumably the one before the renewal: "+
				"pass --ca FILE with a copy of that one (a client's sslrootcert file) to reload it", o.cert)
		}
		if hint != "" {
			err = fmt.Errorf("%w (%s)", err, hint)
		}
		return code, fmt.Errorf("--reload %s: %w", target, err)
	}
	// seen is the last certificate a check got to see: the check that the
	// deadline cuts short sees nothing, which says nothing about the server.
	seen := "no verified certificate"
	for {
		last := inspect(ctx, co, o.reload, env)
		if len(last.ServerChain) > 0 {
			seen = "serial " + last.ServerChain[0].Serial
		}
		if presents(last, want) {
			fmt.Fprintf(out, "reloaded %s: new connections are served serial %s (verified as pgsecure check does)\n", target, hexSerial(want.SerialNumber))
			return exitOK, nil
		}
		select {
		case <-ctx.Done():
			return exitInsecure, fmt.Errorf("after SELECT pg_reload_conf() %s still presents %s, not the renewed serial %s: "+
				"PostgreSQL keeps the certificate it has when it cannot load the new files (owner, mode 0600, ssl_cert_file): see its log", target, seen, hexSerial(want.SerialNumber))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// presents reports whether check verified the server's TLS and its leaf is want.
func presents(r *checkReport, want *x509.Certificate) bool {
	return r.TLS != nil && len(r.ServerChain) > 0 && r.ServerChain[0].Serial == hexSerial(want.SerialNumber)
}

// reloadServer runs SELECT pg_reload_conf() over a pgsecure connection; it
// sets who's User and Database to those it connects as.
func reloadServer(ctx context.Context, co checkOptions, env func(string) (string, bool), dsn string, who *checkReport) error {
	b, _, closeSource, err := newBuilder(ctx, co, dsn, env)
	if err != nil {
		return err
	}
	defer closeSource()
	if cfg, err := b.Config(ctx); err == nil { // who, for the hints, even when the login fails
		who.User, who.Database = cfg.ConnConfig.User, cfg.ConnConfig.Database
	}
	pool, err := b.MaxConns(1).Build(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	var ok bool
	if err := pool.QueryRow(ctx, "SELECT pg_reload_conf()").Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return errors.New("pg_reload_conf() returned false: the server could not signal its postmaster")
	}
	return nil
}
