package testutil

import (
	"context"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsecure/pgsecure/internal/certgen"
)

// ClusterOptions configures StartCluster.
type ClusterOptions struct {
	// Standbys is the number of streaming standbys (default 1).
	Standbys int
	// Synchronous makes the primary wait until a standby has flushed each
	// commit before acknowledging it (synchronous_standby_names = '*',
	// synchronous_commit = on), so an acknowledged write survives a crash of
	// the primary followed by a promotion.
	Synchronous bool
	// Conf holds extra postgresql.conf settings for every node.
	Conf map[string]string
	// ClientCerts makes every node require, besides SCRAM, a client
	// certificate from the cluster's CA whose CN is the role
	// (clientcert=verify-full); replication keeps SCRAM alone.
	ClientCerts bool
}

// Cluster is a PostgreSQL 15 primary with streaming standbys. Every node
// listens on its own loopback address (Nodes[i] on 127.0.0.(i+1)) with its
// own certificate from the same CA naming only that address, so a client
// that checks a node against another node's name fails. Every node accepts
// only TLS with scram-sha-256 (pg_hba: hostssl ... scram-sha-256, hostnossl
// reject), and the standbys replicate over verify-full TLS as role "repl".
type Cluster struct {
	// Nodes[0] was started as the primary; the others as its standbys.
	Nodes []*Postgres
	// CAFile holds the CA certificate that issued every node's certificate.
	CAFile string
	// PKI is that CA (to issue client or replacement certificates).
	PKI *PKI
}

// ClusterHBA is the pg_hba.conf of every cluster node.
var ClusterHBA = []string{
	"hostssl all all 127.0.0.0/8 scram-sha-256",
	"hostssl replication " + replRole + " 127.0.0.0/8 scram-sha-256",
	"hostnossl all all 0.0.0.0/0 reject",
}

const (
	replRole     = "repl"
	replPassword = "repl-Str3aming-9c41"
)

// NodeHost is the loopback address of cluster node i.
func NodeHost(i int) string { return net.IPv4(127, 0, 0, byte(i+1)).String() }

// NodeCertOptions names cluster node i: its address only (CN and IP SAN).
func NodeCertOptions(i int) certgen.Options {
	return certgen.Options{CommonName: NodeHost(i), IPs: []net.IP{net.ParseIP(NodeHost(i))}}
}

// StartCluster starts a primary and o.Standbys streaming standbys (made with
// pg_basebackup -R), each with a certificate issued by p for its own
// address. It returns once every standby streams from the primary. Roles
// and databases created on the primary reach the standbys through
// replication (see WaitStreaming). Everything stops when t ends.
func (p *PKI) StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.Standbys == 0 {
		o.Standbys = 1
	}
	conf := maps.Clone(o.Conf)
	if conf == nil {
		conf = map[string]string{}
	}
	if o.Synchronous {
		conf["synchronous_commit"] = "on"
	}
	c := &Cluster{CAFile: p.CAFile, PKI: p}
	node := PGOptions{HBA: ClusterHBA, Conf: conf}
	if o.ClientCerts {
		node.HBA = append([]string{ClusterHBA[1], "hostssl all all 127.0.0.0/8 scram-sha-256 clientcert=verify-full"}, ClusterHBA[2:]...)
		node.ClientCAPEM = p.CA.CertPEM
	}
	primary := StartPostgres(t, node.on(0).withCert(t, p, 0))
	primary.Exec(t, "CREATE ROLE "+replRole+" REPLICATION LOGIN PASSWORD "+quote(replPassword))
	c.Nodes = append(c.Nodes, primary)
	for i := 1; i <= o.Standbys; i++ {
		sb, err := primary.startStandby(node.on(i).withCert(t, p, i), p.CA.CertPEM)
		RequirePG(t, err)
		t.Cleanup(func() {
			if err := sb.Close(); err != nil {
				t.Errorf("%v", err)
			}
		})
		c.Nodes = append(c.Nodes, sb)
	}
	if o.Synchronous {
		primary.Exec(t, "ALTER SYSTEM SET synchronous_standby_names = '*'")
		primary.reload(t)
	}
	c.WaitStreaming(t, 0)
	return c
}

// on returns o for cluster node i (listening on its own address).
func (o PGOptions) on(i int) PGOptions {
	o.ListenHost = NodeHost(i)
	return o
}

// withCert returns o with a certificate for cluster node i issued by p.
func (o PGOptions) withCert(t testing.TB, p *PKI, i int) PGOptions {
	t.Helper()
	pair, err := p.CA.Issue(NodeCertOptions(i))
	if err != nil {
		t.Fatalf("%v", err)
	}
	o.ServerCertPEM, o.ServerKeyPEM = pair.CertPEM, pair.KeyPEM
	return o
}

// startStandby clones the running primary p with pg_basebackup -R over
// verify-full TLS (trusting caPEM) and starts the copy with o.
func (p *Postgres) startStandby(o PGOptions, caPEM []byte) (*Postgres, error) {
	return start(o, p.bin, p.user, func(sb *Postgres) error { return sb.cloneFrom(p, caPEM) })
}

// cloneFrom fills sb.DataDir with a base backup of primary that carries
// primary_conninfo (pg_basebackup -R), then writes sb's own certificate.
func (sb *Postgres) cloneFrom(primary *Postgres, caPEM []byte) error {
	if err := sb.makeDirs(); err != nil {
		return err
	}
	caFile := sb.file("primary-ca.crt")
	if err := sb.user.writeOwned(caFile, caPEM, 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrPGStart, err)
	}
	// -R copies these settings into primary_conninfo, which the standby's
	// walreceiver uses; sslcert/sslkey name absent files so that libpq never
	// reads a ~/.postgresql client certificate of whatever HOME it inherits.
	none := sb.file("no-client-cert")
	conninfo := fmt.Sprintf("host=%s port=%d user=%s sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s connect_timeout=10",
		primary.Host, primary.Port, replRole, caFile, none, none)
	cmd := sb.user.command(filepath.Join(sb.bin, "pg_basebackup"), "-d", conninfo, "-D", sb.DataDir, "-R",
		"-X", "stream", "-c", "fast", "--no-sync")
	cmd.Env = append(cmd.Env, "HOME="+sb.base, "PGPASSWORD="+replPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: pg_basebackup from %s: %w\n%s", ErrPGStart, primary.Addr(), err, tail(out))
	}
	if err := sb.writeHBA(sb.opts.HBA); err != nil {
		return fmt.Errorf("%w: %w", ErrPGStart, err)
	}
	if err := sb.writeServerCert(sb.opts.ServerCertPEM, sb.opts.ServerKeyPEM); err != nil {
		return fmt.Errorf("%w: %w", ErrPGStart, err)
	}
	return sb.writeClientCA()
}

// Primary returns the running node that is not in recovery; it fails t
// unless there is exactly one.
func (c *Cluster) Primary(t testing.TB) *Postgres {
	t.Helper()
	var found []*Postgres
	for _, n := range c.running() {
		if !n.InRecovery(t) {
			found = append(found, n)
		}
	}
	if len(found) != 1 {
		t.Fatalf("pgsecure/testutil: %d running primaries in the cluster, want 1", len(found))
	}
	return found[0]
}

func (c *Cluster) running() []*Postgres {
	var out []*Postgres
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// WaitStreaming waits until the running primary has at least min(want,
// running standbys) streaming standbys (want 0: every running standby) that
// have replayed everything the primary had committed when WaitStreaming was
// called (even with synchronous_commit=off). It fails t after 30 s.
func (c *Cluster) WaitStreaming(t testing.TB, want int) {
	t.Helper()
	primary := c.Primary(t)
	standbys := len(c.running()) - 1
	if want == 0 || want > standbys {
		want = standbys
	}
	var lsn string
	primary.withAdmin(t, func(ctx context.Context, conn *pgx.Conn) {
		// A commit that wrote WAL, with synchronous_commit=on, flushes the
		// WAL written so far (earlier asynchronous commits included), so
		// that the standbys can receive all of it.
		for _, q := range []string{"SET synchronous_commit = on", "SELECT pg_catalog.pg_logical_emit_message(true, 'pgsecure-testutil', 'flush')"} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("pgsecure/testutil: %v", err)
			}
		}
		if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
			t.Fatalf("pgsecure/testutil: %v", err)
		}
	})
	deadline := time.Now().Add(readyTimeout)
	for {
		var streaming int
		primary.withAdmin(t, func(ctx context.Context, conn *pgx.Conn) {
			err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND replay_lsn >= $1::pg_lsn", lsn).Scan(&streaming)
			if err != nil {
				t.Fatalf("pgsecure/testutil: %v", err)
			}
		})
		if streaming >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgsecure/testutil: %d of %d standbys streaming and caught up after %s; primary log:\n%s\nstandby logs:\n%s",
				streaming, want, readyTimeout, readTail(primary.logPath), c.standbyLogs())
		}
		time.Sleep(pollInterval)
	}
}

// Running reports whether the server process is up (not stopped or closed).
func (p *Postgres) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.closed && p.proc != nil
}

// InRecovery reports pg_is_in_recovery(): true on a standby.
func (p *Postgres) InRecovery(t testing.TB) bool {
	t.Helper()
	var in bool
	p.withAdmin(t, func(ctx context.Context, conn *pgx.Conn) {
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&in); err != nil {
			t.Fatalf("pgsecure/testutil: %v", err)
		}
	})
	return in
}

// Stop stops the server with an immediate shutdown, which to its clients and
// standbys is a crash: open connections break, nothing is flushed. Its files
// stay (Close removes them); Restart starts it again.
func (p *Postgres) Stop(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.proc.stop(sigImmediate); err != nil {
		t.Fatalf("%v", err)
	}
	p.proc = nil
}

// Promote turns a standby into a primary (pg_ctl promote) and returns once it
// accepts writes. It fails t after 30 s.
func (p *Postgres) Promote(t testing.TB) {
	t.Helper()
	cmd := p.user.command(filepath.Join(p.bin, "pg_ctl"), "promote", "-D", p.DataDir, "-w", "-t", "30")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgsecure/testutil: pg_ctl promote: %v\n%s\nserver log:\n%s", err, tail(out), readTail(p.logPath))
	}
	if p.InRecovery(t) {
		t.Fatalf("pgsecure/testutil: still in recovery after pg_ctl promote; server log:\n%s", readTail(p.logPath))
	}
}

// standbyLogs returns the tail of every running standby's server log.
func (c *Cluster) standbyLogs() string {
	var b strings.Builder
	for _, n := range c.Nodes[1:] {
		fmt.Fprintf(&b, "--- %s:\n%s\n", n.Addr(), readTail(n.logPath))
	}
	return b.String()
}

// LogTail returns the last few KiB of the server's log, for failure messages.
func (p *Postgres) LogTail() string { return readTail(p.logPath) }
