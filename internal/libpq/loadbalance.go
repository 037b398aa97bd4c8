package libpq

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// load_balance_hosts (libpq 16+, PGLOADBALANCEHOSTS), which pgx lacks:
//
//   - disable (the default): hosts are tried in the order given, and the
//     addresses of one host name in the order the resolver returns them.
//   - random: for every connection attempt, the hosts are tried in a random
//     order, and the addresses of each host name too, so that connections
//     spread across the servers (for example across the standbys of a
//     cluster with target_session_attrs=standby or prefer-standby).
//
// Shuffling never separates a host from its TLS configuration: each host is
// still verified against its own name.
const (
	LoadBalanceDisable = "disable"
	LoadBalanceRandom  = "random"
)

// CheckLoadBalance validates load_balance_hosts (connection string or
// PGLOADBALANCEHOSTS).
func CheckLoadBalance(cs *Settings) error {
	if s := cs.Get("load_balance_hosts"); s.Set && s.Value != LoadBalanceDisable && s.Value != LoadBalanceRandom {
		return configErr("load_balance_hosts", s.From, fmt.Sprintf("%q is not valid", s.Value),
			"use disable (default: hosts in the order given) or random (libpq 16's load balancing)")
	}
	return nil
}

// shuffler has the signature of rand.Shuffle.
type shuffler func(n int, swap func(i, j int))

// ShuffleHosts puts cc's hosts (Host/Port/TLSConfig and Fallbacks) in the
// order shuffle chooses and makes cc.LookupFunc return each name's addresses
// in an order shuffle chooses. Consecutive entries for the same host and port
// (pgx makes one per TLS mode to try) move together and keep their order.
func ShuffleHosts(cc *pgx.ConnConfig, shuffle shuffler) {
	groups := hostGroups(cc)
	shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
	all := slices.Concat(groups...)
	cc.Host, cc.Port, cc.TLSConfig = all[0].Host, all[0].Port, all[0].TLSConfig
	cc.Fallbacks = all[1:]
	if cc.LookupFunc != nil {
		cc.LookupFunc = shuffledLookup(cc.LookupFunc, shuffle)
	}
}

// hostGroups returns cc's host entries as new FallbackConfigs (the
// per-connection copy may share them with the pool's configuration),
// grouped by consecutive host:port.
func hostGroups(cc *pgx.ConnConfig) [][]*pgconn.FallbackConfig {
	var groups [][]*pgconn.FallbackConfig
	for _, h := range Hosts(cc) {
		fb := &pgconn.FallbackConfig{Host: h.Host, Port: h.Port, TLSConfig: *h.TLS}
		if n := len(groups); n > 0 {
			if last := groups[n-1][0]; last.Host == fb.Host && last.Port == fb.Port {
				groups[n-1] = append(groups[n-1], fb)
				continue
			}
		}
		groups = append(groups, []*pgconn.FallbackConfig{fb})
	}
	return groups
}

// shuffledLookup returns the addresses next resolves, in an order shuffle
// chooses.
func shuffledLookup(next pgconn.LookupFunc, shuffle shuffler) pgconn.LookupFunc {
	return func(ctx context.Context, host string) ([]string, error) {
		addrs, err := next(ctx, host)
		if err != nil {
			return addrs, err
		}
		addrs = slices.Clone(addrs)
		shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
		return addrs, nil
	}
}
