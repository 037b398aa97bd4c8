package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgsecure/pgsecure/internal/certgen"
)

// rsaKeyType is the key type --rsa selects.
const rsaKeyType = certgen.RSA4096

type certsOptions struct {
	out, caDir, cn, dns, ip, user string
	rsa, force                    bool
	days                          int
}

func runCerts(args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	if len(args) > 0 && args[0] == "renew" {
		return runRenew(args[1:], stdout, stderr, env)
	}
	if len(args) == 0 || (args[0] != "ca" && args[0] != "server" && args[0] != "client") {
		fmt.Fprint(stderr, "usage: pgsecure certs ca|server|client|renew [flags]\n\n"+usage)
		return exitUsage
	}
	kind := args[0]
	var o certsOptions
	set := flag.NewFlagSet("pgsecure certs "+kind, flag.ContinueOnError)
	set.SetOutput(stderr)
	set.StringVar(&o.out, "out", "", "directory to write the files to (required)")
	set.BoolVar(&o.rsa, "rsa", false, "RSA keys instead of ECDSA P-256")
	set.BoolVar(&o.force, "force", false, "overwrite existing files")
	switch kind {
	case "ca":
		set.StringVar(&o.cn, "cn", "pgsecure CA", "common name of the CA")
	case "server":
		set.StringVar(&o.dns, "dns", "", "comma-separated DNS names clients use to reach the server")
		set.StringVar(&o.ip, "ip", "", "comma-separated IP addresses clients use to reach the server")
	case "client":
		set.StringVar(&o.user, "user", "", "database role the certificate authenticates (becomes its CN)")
	}
	if kind != "ca" {
		set.StringVar(&o.caDir, "ca-dir", "", "directory holding ca.crt and private/ca.key from `certs ca` (required)")
		set.IntVar(&o.days, "days", 365, "validity in days")
	}
	if code, done := parseCertsFlags(set, kind, args[1:], stderr); done {
		return code
	}
	if err := o.validate(kind); err != nil {
		return certsError(stderr, kind, "%v", err)
	}
	var (
		msg string
		err error
	)
	switch kind {
	case "ca":
		msg, err = writeCA(o)
	case "server":
		msg, err = writeServer(o)
	default:
		msg, err = writeClient(o)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pgsecure certs %s: %v\n", kind, err)
		if errors.Is(err, certgen.ErrFileExists) || errors.Is(err, certgen.ErrInvalidOptions) || errors.Is(err, fs.ErrNotExist) {
			return exitUsage
		}
		return exitInsecure
	}
	fmt.Fprint(stdout, msg)
	return exitOK
}

// parseCertsFlags parses the flags of `certs KIND`, which takes no
// positional argument; done is true when the command ends with code (help
// shown, or a usage error reported).
func parseCertsFlags(set *flag.FlagSet, kind string, args []string, stderr io.Writer) (code int, done bool) {
	pos, err := parseArgs(set, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	case err != nil:
		return exitUsage, true // the flag package printed the problem and the usage
	case len(pos) > 0:
		return certsError(stderr, kind, "unexpected argument %q", pos[0]), true
	}
	return exitOK, false
}

func certsError(stderr io.Writer, kind, format string, args ...any) int {
	fmt.Fprintf(stderr, "pgsecure certs %s: %s (see pgsecure certs %s -h)\n", kind, fmt.Sprintf(format, args...), kind)
	return exitUsage
}

func (o *certsOptions) validate(kind string) error {
	switch {
	case o.out == "":
		return errors.New("--out DIR is required")
	case kind != "ca" && o.caDir == "":
		return errors.New("--ca-dir DIR is required (the directory `pgsecure certs ca` wrote)")
	case kind == "server" && o.dns == "" && o.ip == "":
		return errors.New("give the names clients connect to: --dns and/or --ip (verify-full checks them)")
	case kind == "client" && o.user == "":
		return errors.New("--user ROLE is required")
	case kind != "ca" && o.days <= 0:
		return errors.New("--days must be positive")
	}
	for _, ip := range splitList(o.ip) {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("--ip %q is not an IP address", ip)
		}
	}
	return nil
}

func (o *certsOptions) keyType() certgen.KeyType {
	if o.rsa {
		return rsaKeyType
	}
	return certgen.ECDSAP256
}

// caKeyDir is where `certs ca` puts the CA key, under --out: a directory of
// its own (mode 0700) so that copying the server files never takes it along.
const caKeyDir = "private"

func writeCA(o certsOptions) (string, error) {
	crt, key := absPath(filepath.Join(o.out, "ca.crt")), absPath(filepath.Join(o.out, caKeyDir, "ca.key"))
	if err := refuseExisting(o.force, crt, key); err != nil {
		return "", err
	}
	ca, err := certgen.NewCA(o.cn, o.keyType())
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		return "", fmt.Errorf("pgsecure: cannot create %s: %w", filepath.Dir(key), err)
	}
	if err := os.Chmod(filepath.Dir(key), 0o700); err != nil { // an existing directory may be looser
		return "", fmt.Errorf("pgsecure: cannot restrict %s to its owner: %w", filepath.Dir(key), err)
	}
	if err := writeNewFile(key, ca.KeyPEM, certgen.KeyFileMode, o.force); err != nil {
		return "", err
	}
	if err := writeNewFile(crt, ca.CertPEM, certgen.CertFileMode, o.force); err != nil {
		return "", err
	}
	return fmt.Sprintf("wrote %s (CA certificate: give it to clients as sslrootcert, and to servers as ssl_ca_file for client certificates)\n"+
		"wrote %s (CA private key, mode 0600 in a 0700 directory: it signs certificates for your servers;\n"+
		"  never copy it with the server files; keep it offline, or on the machine that runs `certs renew`)\n", crt, key), nil
}

// loadCA reads DIR/ca.crt and DIR/private/ca.key (or DIR/ca.key, where
// earlier versions wrote it).
func loadCA(dir string) (*certgen.CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("pgsecure: reading the CA certificate: %w; run `pgsecure certs ca --out %s` first", err, dir)
	}
	keyPath := filepath.Join(dir, caKeyDir, "ca.key")
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		keyPEM, err = os.ReadFile(filepath.Join(dir, "ca.key"))
	}
	if err != nil {
		return nil, fmt.Errorf("pgsecure: reading the CA key %s: %w", absPath(keyPath), err)
	}
	return certgen.LoadCA(certPEM, keyPEM)
}

// issue signs a leaf with the CA in o.caDir and writes name.crt/name.key.
func issue(o certsOptions, name string, opts certgen.Options) (ca *certgen.CA, crt, key string, err error) {
	if err := refuseExisting(o.force, filepath.Join(o.out, name+".crt"), filepath.Join(o.out, name+".key")); err != nil {
		return nil, "", "", err
	}
	ca, err = loadCA(o.caDir)
	if err != nil {
		return nil, "", "", err
	}
	now := time.Now()
	opts.NotBefore, opts.NotAfter, opts.KeyType = now.Add(-time.Hour), now.Add(time.Duration(o.days)*24*time.Hour), o.keyType()
	pair, err := ca.Issue(opts)
	if err != nil {
		return nil, "", "", err
	}
	crt, key, err = certgen.WriteKeyPair(o.out, name, pair.CertPEM, pair.KeyPEM, o.force)
	return ca, absPath(crt), absPath(key), err
}

func writeServer(o certsOptions) (string, error) {
	dns, ips := splitList(o.dns), splitList(o.ip)
	opts := certgen.Options{DNSNames: dns}
	for _, s := range ips {
		opts.IPs = append(opts.IPs, net.ParseIP(s))
	}
	opts.CommonName = append(dns, ips...)[0]
	_, crt, key, err := issue(o, "server", opts)
	if err != nil {
		return "", err
	}
	return serverInstructions(crt, key, absPath(filepath.Join(o.caDir, "ca.crt")), opts.CommonName), nil
}

func writeClient(o certsOptions) (string, error) {
	if strings.ContainsAny(o.user, `/\`) {
		return "", fmt.Errorf("%w: --user %q: a role name for a certificate file must not contain / or \\", certgen.ErrInvalidOptions, o.user)
	}
	_, crt, key, err := issue(o, "client-"+o.user, certgen.Options{CommonName: o.user, Client: true})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`wrote %s (client certificate, CN=%s)
wrote %s (client key, mode 0600)

connect with it:
  pgsecure check --ca %s --cert %s --key %s "postgres://%s@HOST:5432/DBNAME"
  pgsecure.NewBuilder(dsn).RootCAFile(%q).ClientCertFiles(%q, %q)
`, crt, o.user, key, absPath(filepath.Join(o.caDir, "ca.crt")), absPath(crt), absPath(key), o.user,
		absPath(filepath.Join(o.caDir, "ca.crt")), absPath(crt), absPath(key)), nil
}

// refuseExisting fails before any key is generated when a target exists.
func refuseExisting(force bool, paths ...string) error {
	if force {
		return nil
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s already exists; pass --force to overwrite it", certgen.ErrFileExists, p)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
