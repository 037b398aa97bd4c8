package proof

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/stretchr/testify/require"
)

// haCluster starts a primary with o.Standbys streaming standbys (each with
// its own certificate) and role appUser, replicated to every standby.
func haCluster(t *testing.T, o testutil.ClusterOptions) *testutil.Cluster {
	t.Helper()
	pki := testutil.NewPKI(t)
	c := pki.StartCluster(t, o)
	c.Nodes[0].CreateRole(t, appUser, appPassword)
	c.WaitStreaming(t, 0)
	return c
}

// multiHostURL is a URL for appUser listing nodes in order (host:port each);
// extra is appended as the query.
func multiHostURL(nodes []*testutil.Postgres, extra string) string {
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr()
	}
	s := fmt.Sprintf("postgres://%s:%s@%s/postgres", appUser, appPassword, strings.Join(addrs, ","))
	if extra != "" {
		s += "?" + extra
	}
	return s
}

// multiHostKV is the keyword/value form of multiHostURL for psql, without the
// password (psql gets it from PGPASSWORD).
func multiHostKV(nodes []*testutil.Postgres, caFile, extra string) string {
	hosts, ports := make([]string, len(nodes)), make([]string, len(nodes))
	for i, n := range nodes {
		hosts[i], ports[i] = n.Host, strconv.Itoa(n.Port)
	}
	return fmt.Sprintf("host=%s port=%s user=%s dbname=postgres sslmode=verify-full sslrootcert=%s %s",
		strings.Join(hosts, ","), strings.Join(ports, ","), appUser, caFile, extra)
}

// psqlQuery runs query with psql (libpq) on conninfo and returns its
// trimmed output. The password travels only in PGPASSWORD; HOME is empty so
// no ~/.postgresql file or ~/.pgpass takes part.
func psqlQuery(t *testing.T, psql, conninfo, query string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, "-w", "-X", "-A", "-t", "-c", query, conninfo)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C", "PGPASSWORD=" + appPassword, "PGCONNECT_TIMEOUT=10"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// nodeOf returns the index of the cluster node with address addr, or -1.
func nodeOf(c *testutil.Cluster, addr string) int {
	for i, n := range c.Nodes {
		if n.Addr() == addr {
			return i
		}
	}
	return -1
}

// verifiedNode checks that conn was verified by pgsecure from both ends
// against the name of the node it is connected to, and returns that node's
// index.
func verifiedNode(t *testing.T, c *testutil.Cluster, conn *pgxpool.Conn) int {
	t.Helper()
	r, err := pgsecure.ConnReport(conn.Conn())
	require.NoError(t, err, "the connection carries pgsecure's verification report")
	i := nodeOf(c, r.Addr)
	require.GreaterOrEqual(t, i, 0, "connected to %s, which is no cluster node", r.Addr)
	host, _, err := net.SplitHostPort(r.Addr)
	require.NoError(t, err)
	require.Equal(t, host, r.ServerName, "node %d was verified against its own name", i)
	require.True(t, r.ServerProven(), "the server proved it terminates TLS (channel binding or ssl=true)")
	require.Contains(t, r.Leaf().IPAddresses, host, "the certificate names the node")
	return i
}
