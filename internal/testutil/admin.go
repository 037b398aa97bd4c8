package testutil

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const adminTimeout = 30 * time.Second

// RequirePG stops t when err (from Start) is not nil: with CI=true it always
// fails; otherwise it skips when the machine lacks PostgreSQL (ErrPGUnavailable)
// and fails for any other error, so a broken configuration is never hidden.
func RequirePG(t testing.TB, err error) {
	t.Helper()
	switch {
	case err == nil:
	case os.Getenv("CI") == "true":
		t.Fatalf("PostgreSQL is required when CI=true: %v", err)
	case errors.Is(err, ErrPGUnavailable):
		t.Skipf("skipping: %v", err)
	default:
		t.Fatalf("%v", err)
	}
}

// literal matches SQL string literals, so that failures never print passwords.
var literal = regexp.MustCompile(`'(?:[^']|'')*'`)

// Exec runs each statement on its own, as superuser, outside any explicit
// transaction (so CREATE DATABASE works). It fails t on the first error; the
// message shows the statement with its string literals redacted.
func (p *Postgres) Exec(t testing.TB, sql ...string) {
	t.Helper()
	p.withAdmin(t, func(ctx context.Context, conn *pgx.Conn) {
		for _, s := range sql {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("pgsecure/testutil: %s: %v", literal.ReplaceAllString(s, "'[redacted]'"), err)
			}
		}
	})
}

// withAdmin runs fn with an admin connection, bounded by adminTimeout.
func (p *Postgres) withAdmin(t testing.TB, fn func(ctx context.Context, conn *pgx.Conn)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := p.Admin(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer conn.Close(ctx)
	fn(ctx, conn)
}

// CreateRole creates a LOGIN role; with a non-empty password the server stores
// it as a SCRAM-SHA-256 verifier. An empty password creates a role without one
// (for certificate authentication).
func (p *Postgres) CreateRole(t testing.TB, name, password string) {
	t.Helper()
	stmt := "CREATE ROLE " + pgx.Identifier{name}.Sanitize() + " LOGIN"
	if password != "" {
		stmt += " PASSWORD " + quote(password)
	}
	p.Exec(t, stmt)
}

// CreateDatabase creates database name owned by role owner.
func (p *Postgres) CreateDatabase(t testing.TB, name, owner string) {
	t.Helper()
	p.Exec(t, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" OWNER "+pgx.Identifier{owner}.Sanitize())
}

// URL returns "postgres://user:password@127.0.0.1:PORT/db" (escaped, no
// sslmode; the user info is omitted when user is empty, the password when
// password is empty).
func (p *Postgres) URL(user, password, db string) string {
	u := url.URL{Scheme: "postgres", Host: p.Addr(), Path: "/" + db}
	switch {
	case user != "" && password != "":
		u.User = url.UserPassword(user, password)
	case user != "":
		u.User = url.User(user)
	}
	return u.String()
}

// SetServerCert replaces the server's certificate and key, reloads the
// configuration, and returns once new TLS connections are served certPEM's
// first certificate (it fails t if that does not happen within 10 s).
func (p *Postgres) SetServerCert(t testing.TB, certPEM, keyPEM []byte) {
	t.Helper()
	if p.opts.SSLOff {
		t.Fatalf("pgsecure/testutil: SetServerCert on a server started with SSLOff")
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("pgsecure/testutil: SetServerCert: certPEM holds no PEM certificate")
	}
	if err := p.writeServerCert(certPEM, keyPEM); err != nil {
		t.Fatalf("pgsecure/testutil: SetServerCert: %v", err)
	}
	p.reload(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		chain, err := ServerCertificates(ctx, p.Addr())
		if err == nil && bytes.Equal(chain[0].Raw, block.Bytes) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pgsecure/testutil: the server did not pick up the new certificate (last error: %v); server log:\n%s",
				err, readTail(p.logPath))
		case <-time.After(pollInterval):
		}
	}
}

// SetHBA rewrites pg_hba.conf with lines (after the admin line) and reloads.
// It fails t, before reloading, if PostgreSQL reports an error in the file.
func (p *Postgres) SetHBA(t testing.TB, lines ...string) {
	t.Helper()
	if err := p.writeHBA(lines); err != nil {
		t.Fatalf("pgsecure/testutil: SetHBA: %v", err)
	}
	var problems *string
	p.withAdmin(t, func(ctx context.Context, conn *pgx.Conn) {
		err := conn.QueryRow(ctx, `SELECT string_agg('line ' || line_number || ': ' || error, '; ')
			FROM pg_hba_file_rules WHERE error IS NOT NULL`).Scan(&problems)
		if err != nil {
			t.Fatalf("pgsecure/testutil: SetHBA: %v", err)
		}
	})
	if problems != nil {
		t.Fatalf("pgsecure/testutil: SetHBA: pg_hba.conf rejected: %s", *problems)
	}
	p.reload(t)
}

// reload asks the postmaster to re-read its configuration. The signal is sent
// before pg_reload_conf returns, so connections opened afterwards see it.
func (p *Postgres) reload(t testing.TB) {
	t.Helper()
	p.Exec(t, "SELECT pg_reload_conf()")
}

// Restart stops the server (fast shutdown) and starts it again on the same
// port and socket; existing connections are closed.
func (p *Postgres) Restart(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		t.Fatalf("pgsecure/testutil: Restart after Close")
	}
	if err := p.proc.stop(sigFast); err != nil {
		t.Fatalf("%v", err)
	}
	p.proc = nil
	proc, err := p.launch()
	if err != nil {
		t.Fatalf("pgsecure/testutil: Restart: %v", err)
	}
	p.proc = proc
}

// ServerCertificates sends an SSLRequest to the PostgreSQL server at addr,
// completes a TLS handshake without verifying it (inspection only: nothing is
// sent over the connection) and returns the certificates the server presented.
func ServerCertificates(ctx context.Context, addr string) ([]*x509.Certificate, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tc, err := startTLSClient(conn, inspectOnlyTLS())
	if err != nil {
		return nil, err
	}
	return tc.ConnectionState().PeerCertificates, nil
}
