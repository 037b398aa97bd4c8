package testutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BouncerOptions configures StartPgBouncer.
type BouncerOptions struct {
	// PoolMode is pool_mode: "session" (default) or "transaction".
	PoolMode string
	// ServerTLSMode is server_tls_sslmode for the bouncer→server hop:
	// "verify-full" (default; the server's certificate must chain to the
	// PKI's CA and name the server's host) or "disable" (plaintext).
	ServerTLSMode string
	// Users may log in through the bouncer with SCRAM; their verifiers are
	// copied from the server's pg_authid, so the bouncer can pass the
	// client's SCRAM proof on to the server.
	Users []string
}

// PgBouncer is a running PgBouncer (Debian's package) in front of one
// PostgreSQL server. Clients must use TLS (client_tls_sslmode=require) with
// the certificate issued by the PKI for LocalServerOptions, and SCRAM. It
// keeps at most 8 server connections per user and database
// (default_pool_size): in session pooling a client pool larger than that
// waits for a free one.
type PgBouncer struct {
	Host string
	Port int

	dir, logPath string
	proc         *process
}

// pgbouncerPaths are where distributions install PgBouncer.
var pgbouncerPaths = []string{"/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"}

func pgbouncerBinary() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range pgbouncerPaths {
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: pgbouncer not found on PATH or in %v; install with: apt-get install -y pgbouncer "+
		"(scripts/install-deps.sh does)", ErrPGUnavailable, pgbouncerPaths)
}

// StartPgBouncer starts a PgBouncer in front of server for t and stops it
// when t ends. Like StartPostgres, it fails t under CI=true when PgBouncer
// cannot run, and skips otherwise when it is not installed.
func (p *PKI) StartPgBouncer(t testing.TB, server *Postgres, o BouncerOptions) *PgBouncer {
	t.Helper()
	if o.PoolMode == "" {
		o.PoolMode = "session"
	}
	if o.ServerTLSMode == "" {
		o.ServerTLSMode = "verify-full"
	}
	bin, err := pgbouncerBinary()
	RequirePG(t, err)
	pair, err := p.CA.Issue(LocalServerOptions())
	if err != nil {
		t.Fatalf("%v", err)
	}
	dir, err := os.MkdirTemp("", "pgsecure-pgbouncer-")
	if err != nil {
		t.Fatalf("pgsecure/testutil: %v", err)
	}
	b := &PgBouncer{Host: "127.0.0.1", dir: dir, logPath: filepath.Join(dir, "pgbouncer.log")}
	t.Cleanup(func() {
		if err := b.proc.stop(syscall.SIGTERM); err != nil { // SIGTERM: immediate shutdown
			t.Errorf("%v", err)
		}
		_ = os.RemoveAll(dir)
	})
	users := server.scramVerifiers(t, o.Users)
	files := map[string][]byte{
		"userlist.txt": []byte(users),
		"bouncer.crt":  pair.CertPEM,
		"bouncer.key":  pair.KeyPEM,
		"ca.crt":       p.CA.CertPEM,
	}
	if err := server.user.chown(dir); err != nil {
		t.Fatalf("pgsecure/testutil: %v", err)
	}
	for name, data := range files {
		if err := server.user.writeOwned(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatalf("pgsecure/testutil: %v", err)
		}
	}
	for range 5 {
		if b.Port, err = freePort(); err != nil {
			t.Fatalf("pgsecure/testutil: %v", err)
		}
		if err := server.user.writeOwned(filepath.Join(dir, "pgbouncer.ini"), []byte(b.ini(server, o)), 0o600); err != nil {
			t.Fatalf("pgsecure/testutil: %v", err)
		}
		if b.proc, err = b.launch(server.user, bin); err == nil || !errors.Is(err, errAddrInUse) {
			break
		}
	}
	RequirePG(t, err)
	return b
}

// Addr is "127.0.0.1:PORT".
func (b *PgBouncer) Addr() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.Port)) }

// LogTail returns the last few KiB of PgBouncer's log.
func (b *PgBouncer) LogTail() string { return readTail(b.logPath) }

func (b *PgBouncer) ini(server *Postgres, o BouncerOptions) string {
	f := func(name string) string { return filepath.Join(b.dir, name) }
	return strings.Join([]string{
		"[databases]",
		fmt.Sprintf("* = host=%s port=%d", server.Host, server.Port),
		"[pgbouncer]",
		"listen_addr = " + b.Host,
		"listen_port = " + strconv.Itoa(b.Port),
		"unix_socket_dir =",
		"logfile = " + b.logPath,
		"pidfile = " + f("pgbouncer.pid"),
		"auth_type = scram-sha-256",
		"auth_file = " + f("userlist.txt"),
		"pool_mode = " + o.PoolMode,
		"max_client_conn = 200",
		"default_pool_size = 8",
		"client_tls_sslmode = require",
		"client_tls_cert_file = " + f("bouncer.crt"),
		"client_tls_key_file = " + f("bouncer.key"),
		"server_tls_sslmode = " + o.ServerTLSMode,
		"server_tls_ca_file = " + f("ca.crt"),
		"",
	}, "\n")
}

// scramVerifiers returns PgBouncer auth_file lines for users with the SCRAM
// verifiers stored by the server.
func (p *Postgres) scramVerifiers(t testing.TB, users []string) string {
	t.Helper()
	var b strings.Builder
	p.withAdmin(t, func(ctx context.Context, conn *pgx.Conn) {
		for _, u := range users {
			var v string
			if err := conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1 AND rolpassword LIKE 'SCRAM-SHA-256$%'", u).Scan(&v); err != nil {
				t.Fatalf("pgsecure/testutil: no SCRAM verifier for role %q: %v", u, err)
			}
			fmt.Fprintf(&b, "%q %q\n", u, v)
		}
	})
	return b.String()
}

// launch runs PgBouncer in the foreground as user and waits until it
// accepts TCP connections.
func (b *PgBouncer) launch(user osUser, bin string) (*process, error) {
	cmd := user.command(bin, filepath.Join(b.dir, "pgbouncer.ini"))
	out, err := os.OpenFile(filepath.Join(b.dir, "stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPGStart, err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: cannot run pgbouncer: %w", ErrPGStart, err)
	}
	proc := &process{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(proc.done)
	}()
	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			_ = c.Close()
			return proc, nil
		}
		select {
		case <-proc.done:
			log := readTail(b.logPath) + readTail(filepath.Join(b.dir, "stderr.log"))
			if strings.Contains(log, "Address already in use") {
				return nil, fmt.Errorf("%w: pgbouncer: %s", errAddrInUse, log)
			}
			return nil, fmt.Errorf("%w: pgbouncer exited during startup; log:\n%s", ErrPGStart, log)
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			stopErr := proc.stop(syscall.SIGTERM)
			return nil, errors.Join(fmt.Errorf("%w: pgbouncer not accepting connections after %s; log:\n%s",
				ErrPGStart, readyTimeout, readTail(b.logPath)), stopErr)
		}
	}
}
