package testutil

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// PGOptions configures a throwaway PostgreSQL server.
type PGOptions struct {
	// ServerCertPEM and ServerKeyPEM are the server's certificate (chain) and
	// key; required unless SSLOff.
	ServerCertPEM, ServerKeyPEM []byte
	// SSLOff runs the server with ssl=off: a real plaintext-only server.
	SSLOff bool
	// ClientCAPEM becomes ssl_ca_file (needed for clientcert=verify-full).
	ClientCAPEM []byte
	// HBA replaces the default host lines of pg_hba.conf. The line
	// "local all postgres trust" (the harness's admin path) always comes first.
	HBA []string
	// Conf holds extra postgresql.conf settings, values written verbatim
	// (e.g. "ssl_max_protocol_version": "'TLSv1.2'").
	Conf map[string]string
	// ListenHost is the loopback address the server listens on and Host
	// reports (default "127.0.0.1"); a cluster gives each node its own.
	ListenHost string
}

// DefaultHBA is used when PGOptions.HBA is empty and SSL is on: TLS with SCRAM
// from 127.0.0.1, plaintext refused.
var DefaultHBA = []string{
	"hostssl all all 127.0.0.1/32 scram-sha-256",
	"hostnossl all all 0.0.0.0/0 reject",
}

// DefaultHBASSLOff is used when PGOptions.HBA is empty and SSLOff is set.
var DefaultHBASSLOff = []string{"host all all 127.0.0.1/32 scram-sha-256"}

// adminHBA is always the first pg_hba.conf line.
const adminHBA = "local all postgres trust"

// Postgres is a running throwaway server. Host is "127.0.0.1" unless
// PGOptions.ListenHost says otherwise; the superuser
// "postgres" is reachable without password over the unix socket in SocketDir
// only (see Admin).
type Postgres struct {
	Host      string
	Port      int
	SocketDir string
	DataDir   string

	base, bin, logPath string
	user               osUser
	opts               PGOptions

	mu     sync.Mutex
	proc   *process
	closed bool
}

// StartPostgres starts a server for t and stops it (immediate shutdown) and
// removes its files when t ends. Bad options fail t; a server that cannot run
// goes through RequirePG (fail under CI=true, skip otherwise when missing).
func StartPostgres(t testing.TB, o PGOptions) *Postgres {
	t.Helper()
	p, err := Start(o)
	if errors.Is(err, errInvalidPGOptions) {
		t.Fatalf("%v", err)
	}
	RequirePG(t, err)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return p
}

var errInvalidPGOptions = errors.New("pgsecure/testutil: invalid PGOptions")

// Start starts a server; the caller must Close it. Errors wrap ErrPGUnavailable
// or ErrPGStart (with the server log), or report invalid options.
func Start(o PGOptions) (*Postgres, error) {
	if !o.SSLOff && (len(o.ServerCertPEM) == 0 || len(o.ServerKeyPEM) == 0) {
		return nil, fmt.Errorf("%w: ServerCertPEM and ServerKeyPEM are required unless SSLOff is set", errInvalidPGOptions)
	}
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	u, err := serverUser()
	if err != nil {
		return nil, err
	}
	return start(o, bin, u, (*Postgres).initCluster)
}

// start makes a new temporary base directory for a server, has prepare fill
// its data directory (initdb, or a base backup), and starts it.
func start(o PGOptions, bin string, u osUser, prepare func(*Postgres) error) (*Postgres, error) {
	base, err := os.MkdirTemp(scratchDir(), "pgsecure-pg-")
	if err != nil {
		return nil, fmt.Errorf("%w: cannot create a temporary directory: %w", ErrPGStart, err)
	}
	p := &Postgres{
		Host: cmp.Or(o.ListenHost, "127.0.0.1"), SocketDir: filepath.Join(base, "sock"), DataDir: filepath.Join(base, "data"),
		base: base, bin: bin, logPath: filepath.Join(base, "server.log"), user: u, opts: o,
	}
	if err := prepare(p); err != nil {
		_ = os.RemoveAll(base)
		return nil, err
	}
	if err := p.startOnFreePort(); err != nil {
		_ = os.RemoveAll(base)
		return nil, err
	}
	return p, nil
}

// Addr is "127.0.0.1:PORT".
func (p *Postgres) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// Close stops the server (immediate shutdown), waits until no server process is
// left, and removes its directories. It is safe to call more than once.
func (p *Postgres) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err := p.proc.stop(sigImmediate)
	p.proc = nil
	if rmErr := os.RemoveAll(p.base); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("pgsecure/testutil: cannot remove %s: %w", p.base, rmErr))
	}
	return err
}

// initCluster makes the data directory (a copy of an initdb template: see
// template.go) and writes the configuration and TLS files.
func (p *Postgres) initCluster() error {
	if err := p.makeDirs(); err != nil {
		return err
	}
	if err := p.copyTemplate(); err != nil {
		return err
	}
	hba := p.opts.HBA
	if len(hba) == 0 {
		hba = DefaultHBA
		if p.opts.SSLOff {
			hba = DefaultHBASSLOff
		}
	}
	if err := p.writeHBA(hba); err != nil {
		return fmt.Errorf("%w: %w", ErrPGStart, err)
	}
	if !p.opts.SSLOff {
		if err := p.writeServerCert(p.opts.ServerCertPEM, p.opts.ServerKeyPEM); err != nil {
			return fmt.Errorf("%w: %w", ErrPGStart, err)
		}
	}
	return p.writeClientCA()
}

// makeDirs creates the base and socket directories for the server user.
func (p *Postgres) makeDirs() error {
	for _, d := range []string{p.base, p.SocketDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("%w: %w", ErrPGStart, err)
		}
		if err := p.user.chown(d); err != nil {
			return fmt.Errorf("%w: cannot give %s to the postgres OS user: %w", ErrPGStart, d, err)
		}
	}
	return nil
}

// writeClientCA writes ClientCAPEM, if any, where ssl_ca_file points.
func (p *Postgres) writeClientCA() error {
	if len(p.opts.ClientCAPEM) > 0 {
		if err := p.user.writeOwned(p.file("client-ca.crt"), p.opts.ClientCAPEM, 0o644); err != nil {
			return fmt.Errorf("%w: %w", ErrPGStart, err)
		}
	}
	return nil
}

func (p *Postgres) file(name string) string { return filepath.Join(p.base, name) }

func (p *Postgres) writeHBA(lines []string) error {
	text := adminHBA + "\n" + strings.Join(lines, "\n") + "\n"
	return p.user.writeOwned(filepath.Join(p.DataDir, "pg_hba.conf"), []byte(text), 0o600)
}

func (p *Postgres) writeServerCert(certPEM, keyPEM []byte) error {
	if err := p.user.writeOwned(p.file("server.key"), keyPEM, 0o600); err != nil {
		return err
	}
	return p.user.writeOwned(p.file("server.crt"), certPEM, 0o644)
}

// writeConf writes the harness settings and Conf into pgsecure.conf in the
// data directory, included at the end of postgresql.conf (so it wins).
func (p *Postgres) writeConf() error {
	settings := map[string]string{
		"port":                    strconv.Itoa(p.Port),
		"listen_addresses":        quote(p.Host),
		"unix_socket_directories": quote(p.SocketDir),
		"fsync":                   "off",
		"synchronous_commit":      "off",
		"full_page_writes":        "off",
		"shared_buffers":          "16MB",
		"max_connections":         "40",
		"password_encryption":     "'scram-sha-256'",
		"ssl":                     "off",
	}
	if !p.opts.SSLOff {
		settings["ssl"] = "on"
		settings["ssl_cert_file"] = quote(p.file("server.crt"))
		settings["ssl_key_file"] = quote(p.file("server.key"))
	}
	if len(p.opts.ClientCAPEM) > 0 {
		settings["ssl_ca_file"] = quote(p.file("client-ca.crt"))
	}
	for k, v := range p.opts.Conf {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	conf := filepath.Join(p.DataDir, "pgsecure.conf")
	if err := p.user.writeOwned(conf, []byte(b.String()), 0o600); err != nil {
		return err
	}
	main := filepath.Join(p.DataDir, "postgresql.conf")
	body, err := os.ReadFile(main)
	if err != nil {
		return err
	}
	if include := "\ninclude 'pgsecure.conf'\n"; !strings.Contains(string(body), include) {
		return p.user.writeOwned(main, append(body, include...), 0o600)
	}
	return nil
}

// quote renders s as a postgresql.conf string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// startOnFreePort picks a free port and starts the server, picking another
// port when the chosen one was taken in the meantime.
func (p *Postgres) startOnFreePort() error {
	var err error
	for range 5 {
		if p.Port, err = freePort(); err != nil {
			return fmt.Errorf("%w: cannot find a free port: %w", ErrPGStart, err)
		}
		if err = p.writeConf(); err != nil {
			return fmt.Errorf("%w: cannot write postgresql.conf: %w", ErrPGStart, err)
		}
		if p.proc, err = p.launch(); err == nil || !errors.Is(err, errAddrInUse) {
			return err
		}
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns at most the last 4 KiB of b, for error messages.
func tail(b []byte) string {
	const maxTail = 4 << 10
	if len(b) > maxTail {
		b = append([]byte("..."), b[len(b)-maxTail:]...)
	}
	return string(b)
}

// readTail returns the tail of the file at path, or why it cannot be read.
func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	return tail(b)
}
