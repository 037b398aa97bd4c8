package proof

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/secrets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tsaCase is a host list (node indexes; node 0 is the primary, 1 and 2
// standbys), a target_session_attrs mode, and the node libpq's documentation
// says is chosen (-1: no host qualifies, the connection fails).
type tsaCase struct {
	order []int
	mode  string
	want  int
}

func tsaCases() []tsaCase {
	var cases []tsaCase
	add := func(order []int, wants map[string]int) {
		for _, mode := range []string{"any", "read-write", "read-only", "primary", "standby", "prefer-standby"} {
			if want, ok := wants[mode]; ok {
				cases = append(cases, tsaCase{order: order, mode: mode, want: want})
			}
		}
	}
	all := map[string]int{"any": 0, "read-write": 0, "read-only": 1, "primary": 0, "standby": 1, "prefer-standby": 1}
	add([]int{0, 1, 2}, all)
	add([]int{2, 1, 0}, map[string]int{"any": 2, "read-write": 0, "read-only": 2, "primary": 0, "standby": 2, "prefer-standby": 2})
	add([]int{0}, map[string]int{"read-only": -1, "standby": -1, "prefer-standby": 0})
	add([]int{1, 2}, map[string]int{"any": 1, "read-write": -1, "primary": -1, "prefer-standby": 1})
	return cases
}

// TestTargetSessionAttrsParity: for each host order and each of the six
// target_session_attrs modes, psql (libpq) and pgsecure connect to the same
// real cluster (a primary and two streaming standbys, each with its own
// certificate); both must pick the node libpq documents, or both must fail,
// and pgsecure's connection must be verified against that node's own name.
func TestTargetSessionAttrsParity(t *testing.T) {
	t.Parallel()
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	c := haCluster(t, testutil.ClusterOptions{Standbys: 2})
	for _, tc := range tsaCases() {
		nodes := make([]*testutil.Postgres, len(tc.order))
		for i, n := range tc.order {
			nodes[i] = c.Nodes[n]
		}
		t.Run(fmt.Sprintf("%s/hosts%v", tc.mode, tc.order), func(t *testing.T) {
			tsa := "target_session_attrs=" + tc.mode
			out, err := psqlQuery(t, psql, multiHostKV(nodes, c.CAFile, tsa), "SELECT inet_server_port()")
			libpq := -1
			if err == nil {
				port, convErr := strconv.Atoi(out)
				require.NoError(t, convErr, "psql output %q", out)
				libpq = indexOfPort(c, port)
			}
			require.Equal(t, tc.want, libpq, "psql disagrees with libpq's documented behaviour (psql error: %v)", err)

			ctx := ctxT(t, 30*time.Second)
			pool, err := pgsecure.NewBuilder(multiHostURL(nodes, tsa)).RootCAFile(c.CAFile).Logger(quiet).Build(ctx)
			if tc.want < 0 {
				require.Error(t, err, "libpq finds no host for %s; pgsecure must not either", tc.mode)
				assert.NotErrorIs(t, err, pgsecure.ErrUntrustedServer, "it fails on the session attributes, not on TLS")
				assert.NotErrorIs(t, err, pgsecure.ErrNotEncrypted)
				assert.NotContains(t, err.Error(), appPassword)
				return
			}
			require.NoError(t, err)
			defer pool.Close()
			conn, err := pool.Acquire(ctx)
			require.NoError(t, err)
			defer conn.Release()
			assert.Equal(t, tc.want, verifiedNode(t, c, conn), "pgsecure picks the node libpq picks")
		})
	}

	// Every host is verified against its own name: a standby presenting the
	// certificate of another node of the same cluster (same CA, valid name
	// elsewhere) is refused by both clients.
	t.Run("standby presents another node's certificate", func(t *testing.T) {
		standby := c.Nodes[1]
		wrong, err := c.PKI.CA.Issue(testutil.NodeCertOptions(2))
		require.NoError(t, err)
		own, err := c.PKI.CA.Issue(testutil.NodeCertOptions(1))
		require.NoError(t, err)
		standby.SetServerCert(t, wrong.CertPEM, wrong.KeyPEM)
		defer standby.SetServerCert(t, own.CertPEM, own.KeyPEM)
		ctx := ctxT(t, 30*time.Second)

		tsa := "target_session_attrs=standby"
		both := []*testutil.Postgres{c.Nodes[1], c.Nodes[2]}
		// libpq 15 treats a certificate failure as final and does not try
		// the next host; pgx (so pgsecure) refuses that host and tries the
		// next one, which is verified against its own name in turn. Either
		// way no connection reaches the mis-named standby.
		_, err = psqlQuery(t, psql, multiHostKV(both, c.CAFile, tsa), "SELECT inet_server_port()")
		require.ErrorContains(t, err, "does not match host name", "libpq refuses the mis-named standby")
		pool, err := pgsecure.NewBuilder(multiHostURL(both, tsa)).RootCAFile(c.CAFile).Logger(quiet).Build(ctx)
		require.NoError(t, err)
		defer pool.Close()
		conn, err := pool.Acquire(ctx)
		require.NoError(t, err)
		defer conn.Release()
		assert.Equal(t, 2, verifiedNode(t, c, conn), "pgsecure skips the mis-named standby")

		only := []*testutil.Postgres{c.Nodes[1]}
		_, err = psqlQuery(t, psql, multiHostKV(only, c.CAFile, tsa), "SELECT 1")
		require.ErrorContains(t, err, "certificate", "libpq refuses the mis-named standby")
		_, err = pgsecure.NewBuilder(multiHostURL(only, tsa)).RootCAFile(c.CAFile).Logger(quiet).Build(ctx)
		require.ErrorIs(t, err, pgsecure.ErrUntrustedServer, "pgsecure refuses the mis-named standby")
		assert.NotContains(t, err.Error(), appPassword)
	})
}

// indexOfPort returns the index of the node listening on port, or -1.
func indexOfPort(c *testutil.Cluster, port int) int {
	for i, n := range c.Nodes {
		if n.Port == port {
			return i
		}
	}
	return -1
}

// credentialRotationUnder connects with target_session_attrs=mode to hosts
// (primary, standby) with credentials from a rotating source, rotates the
// password (the cached copy is then rejected, SQLSTATE 28P01), and requires
// the next connection to succeed within one Acquire on the node mode picks
// (want; -1: any node, as for "any", where the retry may land on the next
// host).
func credentialRotationUnder(t *testing.T, c *testutil.Cluster, mode string, want int) {
	t.Helper()
	credentialRotation(t, c, c.Nodes[:2], "target_session_attrs="+mode, "Rotated-"+mode+"-1b9e", want)
}

// credentialRotation is credentialRotationUnder for any host list (nodes,
// in that order) and query string; pw is the rotated password.
func credentialRotation(t *testing.T, c *testutil.Cluster, nodes []*testutil.Postgres, query, pw string, want int) {
	t.Helper()
	src, clock := newBackend(appPassword, "v1", 0)
	ctx := ctxT(t, time.Minute)
	url := strings.Replace(multiHostURL(nodes, query), ":"+appPassword+"@", "@", 1)
	pool, err := pgsecure.NewBuilder(url).RootCAFile(c.CAFile).Logger(quiet).Credentials(src).
		CredentialCache(cacheOn(clock, time.Hour)).Build(ctx)
	require.NoError(t, err)
	defer pool.Close()

	c.Nodes[0].Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, pw))
	t.Cleanup(func() {
		c.Nodes[0].Exec(t, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", appUser, appPassword))
		c.WaitStreaming(t, 0)
	})
	c.WaitStreaming(t, 0)
	src.set(func(b *backend) { b.creds.Password, b.creds.Version = secrets.NewSecret(pw), "v2" })
	pool.Reset()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			assert.NotEqual(t, "28P01", pgErr.Code, "the rejected cached password must be retried with the fresh one inside the Acquire")
		}
		for _, secret := range []string{appPassword, pw} {
			assert.NotContains(t, err.Error(), secret)
		}
		t.Fatalf("Acquire after rotation: %v", err)
	}
	defer conn.Release()
	got := verifiedNode(t, c, conn)
	if want >= 0 {
		assert.Equal(t, want, got, "the node %s picks", query)
	}
}

// TestTargetSessionAttrsCredentialRotation: every mode keeps the rotation
// retry (prefer-standby, whose host order matters more, in
// TestPreferStandbyCredentialRotation).
func TestTargetSessionAttrsCredentialRotation(t *testing.T) {
	t.Parallel()
	c := haCluster(t, testutil.ClusterOptions{Standbys: 1})
	for mode, want := range map[string]int{"any": -1, "read-write": 0, "read-only": 1, "primary": 0, "standby": 1} {
		t.Run(mode, func(t *testing.T) { credentialRotationUnder(t, c, mode, want) })
	}
}

// TestLoadBalanceHostsCredentialRotation: with load_balance_hosts=random
// the rotation retry still works whatever order the hosts were shuffled into.
func TestLoadBalanceHostsCredentialRotation(t *testing.T) {
	t.Parallel()
	c := haCluster(t, testutil.ClusterOptions{Standbys: 1})
	for i := range 4 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			credentialRotation(t, c, c.Nodes[:2], "target_session_attrs=read-write&load_balance_hosts=random", fmt.Sprintf("Rotated-lb-%d-7c2d", i), 0)
		})
	}
}

// TestPreferStandbyCredentialRotation: prefer-standby with a credential
// source recovers from a rotated password within one Acquire like every
// other mode, and still lands on the standby whatever the host order: when
// the standby comes first, its retry with fresh credentials must not lose
// to the primary that answered after it (pgconn keeps one host for its
// second pass).
func TestPreferStandbyCredentialRotation(t *testing.T) {
	t.Parallel()
	c := haCluster(t, testutil.ClusterOptions{Standbys: 1})
	t.Run("primary first", func(t *testing.T) {
		credentialRotation(t, c, c.Nodes[:2], "target_session_attrs=prefer-standby", "Rotated-ps-1-5d0e", 1)
	})
	t.Run("standby first", func(t *testing.T) {
		credentialRotation(t, c, []*testutil.Postgres{c.Nodes[1], c.Nodes[0]}, "target_session_attrs=prefer-standby", "Rotated-ps-2-5d0e", 1)
	})
	for i := range 4 {
		t.Run("load balanced "+strconv.Itoa(i), func(t *testing.T) {
			credentialRotation(t, c, c.Nodes[:2], "target_session_attrs=prefer-standby&load_balance_hosts=random", fmt.Sprintf("Rotated-ps-lb-%d-5d0e", i), 1)
		})
	}
}

// TestTargetSessionAttrsClientCertificate: on a cluster whose nodes require
// a client certificate besides SCRAM (clientcert=verify-full), every mode
// connects to the node it picks, verified against that node's own name, and
// the server saw the client certificate.
func TestTargetSessionAttrsClientCertificate(t *testing.T) {
	t.Parallel()
	c := haCluster(t, testutil.ClusterOptions{Standbys: 1, ClientCerts: true})
	certFile, keyFile, _ := c.PKI.Client(t, appUser)
	ctx := ctxT(t, time.Minute)

	_, err := pgsecure.NewBuilder(multiHostURL(c.Nodes, "")).RootCAFile(c.CAFile).Logger(quiet).Build(ctx)
	require.Error(t, err, "without the client certificate the cluster refuses the connection")

	for mode, want := range map[string]int{"any": 0, "read-write": 0, "read-only": 1, "primary": 0, "standby": 1, "prefer-standby": 1} {
		t.Run(mode, func(t *testing.T) {
			pool, err := pgsecure.NewBuilder(multiHostURL(c.Nodes, "target_session_attrs="+mode)).RootCAFile(c.CAFile).
				ClientCertFiles(certFile, keyFile).Logger(quiet).Build(ctx)
			require.NoError(t, err)
			defer pool.Close()
			conn, err := pool.Acquire(ctx)
			require.NoError(t, err)
			defer conn.Release()
			assert.Equal(t, want, verifiedNode(t, c, conn))
			r, _ := pgsecure.ConnReport(conn.Conn())
			assert.Equal(t, "/CN="+appUser, r.Server.ClientDN, "the node saw the client certificate")
		})
	}
}
