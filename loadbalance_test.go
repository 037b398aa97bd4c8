package pgsecure

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pgsecure/pgsecure/internal/libpq"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lbConfig returns the ConnConfig pgsecure builds for connString.
func lbConfig(t *testing.T, connString string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := NewBuilder(connString).RootCAFile(writeCA(t)).Config(context.Background())
	require.NoError(t, err)
	return cfg.ConnConfig
}

// lbPool returns the pool configuration pgsecure builds for connString; its
// BeforeConnect is where production applies load_balance_hosts to each
// connection's copy of the ConnConfig.
func lbPool(t *testing.T, connString string) *pgxpool.Config {
	t.Helper()
	cfg, err := NewBuilder(connString).RootCAFile(writeCA(t)).Config(context.Background())
	require.NoError(t, err)
	return cfg
}

// connectCopy is what the pool does before each connection: a copy of the
// pool's ConnConfig, run through its BeforeConnect.
func connectCopy(t *testing.T, cfg *pgxpool.Config) *pgx.ConnConfig {
	t.Helper()
	c := cfg.ConnConfig.Copy()
	require.NoError(t, cfg.BeforeConnect(context.Background(), c))
	return c
}

// hostOrder lists cc's hosts as "host:port", each checked to carry the TLS
// configuration for its own name.
func hostOrder(t *testing.T, cc *pgx.ConnConfig) []string {
	t.Helper()
	var out []string
	for _, h := range libpq.Hosts(cc) {
		require.NotNil(t, *h.TLS, "host %s lost its TLS configuration", h.Host)
		assert.Equal(t, h.Host, (*h.TLS).ServerName, "host %s must be verified against its own name", h.Host)
		out = append(out, h.Host+":"+strconv.Itoa(int(h.Port)))
	}
	return out
}

func TestLoadBalanceHostsSettingAccepted(t *testing.T) {
	cleanEnv(t)
	for _, v := range []string{"disable", "random"} {
		cc := lbConfig(t, "host=a,b,c port=5432,5433,5434 user=app load_balance_hosts="+v)
		assert.NotContains(t, cc.RuntimeParams, "load_balance_hosts", "pgx must not send it to the server as a run-time parameter")
	}
	t.Setenv("PGLOADBALANCEHOSTS", "random")
	cc := lbConfig(t, "postgres://app@a,b/db")
	assert.NotContains(t, cc.RuntimeParams, "load_balance_hosts")
}

func TestLoadBalanceHostsInvalidRefused(t *testing.T) {
	cleanEnv(t)
	_, err := NewBuilder("host=a,b user=app load_balance_hosts=round-robin").RootCAFile(writeCA(t)).Config(context.Background())
	require.ErrorIs(t, err, ErrInsecureConfig)
	assert.Contains(t, err.Error(), "load_balance_hosts")
	assert.Contains(t, err.Error(), "random", "the error names the valid values")

	t.Setenv("PGLOADBALANCEHOSTS", "1")
	_, err = NewBuilder("host=a,b user=app").RootCAFile(writeCA(t)).Config(context.Background())
	require.ErrorIs(t, err, ErrInsecureConfig)
	assert.Contains(t, err.Error(), "PGLOADBALANCEHOSTS")
}

// TestBalanceHostsDisableKeepsOrder: without load_balance_hosts (or with
// disable) the host list and the resolver are left as they are.
func TestBalanceHostsDisableKeepsOrder(t *testing.T) {
	cleanEnv(t)
	for _, dsn := range []string{"host=a,b,c user=app", "host=a,b,c user=app load_balance_hosts=disable"} {
		cfg := lbPool(t, dsn)
		cfg.ConnConfig.LookupFunc = func(context.Context, string) ([]string, error) {
			return []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, nil
		}
		var dialled []string
		cfg.ConnConfig.DialFunc = func(_ context.Context, _, addr string) (net.Conn, error) {
			dialled = append(dialled, addr)
			return nil, errors.New("no network in this test")
		}
		for range 20 {
			c := connectCopy(t, cfg)
			assert.Equal(t, []string{"a:5432", "b:5432", "c:5432"}, hostOrder(t, c))
			dialled = nil
			_, err := c.DialFunc(context.Background(), "tcp", "db.example.com:5432")
			require.Error(t, err)
			assert.Equal(t, []string{"10.0.0.1:5432", "10.0.0.2:5432", "10.0.0.3:5432"}, dialled,
				"the addresses are dialled in the resolver's order")
		}
	}
}

// TestShuffleHostsIsAPermutation: every order of three hosts appears, each
// host keeps its port and its own TLS configuration, and the pool's
// configuration is not modified.
func TestShuffleHostsIsAPermutation(t *testing.T) {
	cleanEnv(t)
	cfg := lbPool(t, "host=a,b,c port=1,2,3 user=app load_balance_hosts=random")
	cc := cfg.ConnConfig
	seen := map[string]int{}
	for range 600 {
		c := connectCopy(t, cfg)
		order := hostOrder(t, c)
		sorted := slices.Sorted(slices.Values(order))
		require.Equal(t, []string{"a:1", "b:2", "c:3"}, sorted)
		seen[order[0]+","+order[1]+","+order[2]]++
	}
	assert.Len(t, seen, 6, "all 3! orders appear: %v", seen)
	for order, n := range seen {
		assert.Greater(t, n, 50, "order %s is chosen about 1 time in 6 (100 of 600): %v", order, seen)
	}
	assert.Equal(t, []string{"a:1", "b:2", "c:3"}, hostOrder(t, cc), "the pool's configuration keeps its order")
}

// TestShuffleHostsKeepsGroups: consecutive entries for one host:port move
// together, in their original order.
func TestShuffleHostsKeepsGroups(t *testing.T) {
	cleanEnv(t)
	cc := lbConfig(t, "host=a,b user=app")
	extra := *cc.Fallbacks[0]
	cc.Fallbacks = append(cc.Fallbacks, &extra) // b twice, as pgx does for sslmode=prefer
	reverse := func(n int, swap func(i, j int)) {
		for i := range n / 2 {
			swap(i, n-1-i)
		}
	}
	libpq.ShuffleHosts(cc, reverse)
	assert.Equal(t, []string{"b:5432", "b:5432", "a:5432"}, hostOrder(t, cc))
}

// TestBalanceHostsFromEnvironment: PGLOADBALANCEHOSTS=random shuffles as the
// connection-string key does, and the key wins over the variable.
func TestBalanceHostsFromEnvironment(t *testing.T) {
	cleanEnv(t)
	t.Setenv("PGLOADBALANCEHOSTS", "random")
	orders := func(dsn string) int {
		cfg := lbPool(t, dsn)
		seen := map[string]bool{}
		for range 100 {
			c := connectCopy(t, cfg)
			seen[strings.Join(hostOrder(t, c), ",")] = true
		}
		return len(seen)
	}
	assert.Equal(t, 6, orders("host=a,b,c user=app"), "PGLOADBALANCEHOSTS=random shuffles")
	assert.Equal(t, 1, orders("host=a,b,c user=app load_balance_hosts=disable"), "the connection string wins")
}
