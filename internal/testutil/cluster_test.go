package testutil

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClusterReplicatesAndPromotes: a row written on the primary is read on
// the standby over a verify-full connection to the standby's own address;
// the standby refuses the primary's name (each node has its own
// certificate); after the primary stops, Promote makes the standby writable.
func TestClusterReplicatesAndPromotes(t *testing.T) {
	t.Parallel()
	pki := NewPKI(t)
	c := pki.StartCluster(t, ClusterOptions{Standbys: 1, Synchronous: true})
	primary, standby := c.Nodes[0], c.Nodes[1]
	require.Equal(t, primary, c.Primary(t))
	assert.True(t, standby.InRecovery(t))
	assert.Equal(t, NodeHost(1), standby.Host)

	primary.CreateRole(t, "app", testPassword)
	primary.Exec(t, "CREATE TABLE t (v int)", "GRANT ALL ON t TO app", "INSERT INTO t VALUES (42)")
	c.WaitStreaming(t, 1)

	conn, err := connect(t, verifyFull(standby, "app", testPassword, "postgres", c.CAFile))
	require.NoError(t, err)
	var v int
	require.NoError(t, conn.QueryRow(testCtx(t), "SELECT v FROM t").Scan(&v))
	assert.Equal(t, 42, v)
	assert.True(t, sslInUse(t, conn))

	// Each node's certificate names its own address only.
	for i, n := range c.Nodes {
		chain, err := ServerCertificates(testCtx(t), n.Addr())
		require.NoError(t, err)
		assert.NoError(t, chain[0].VerifyHostname(NodeHost(i)))
		assert.Error(t, chain[0].VerifyHostname(NodeHost(1-i)), "node %d's certificate must not name node %d", i, 1-i)
	}

	primary.Stop(t)
	standby.Promote(t)
	assert.Equal(t, standby, c.Primary(t))
	standby.Exec(t, "INSERT INTO t VALUES (43)")
}
