// Package uriparam parses the query parameters of secret source URIs the same
// way for every backend: each known parameter at most once, unknown ones
// refused with a suggestion, parameters that would carry a secret refused,
// and nothing that may be a value echoed in an error.
package uriparam

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Parse returns the query parameters of u. allowed lists the parameters the
// scheme takes; refused lists names that would put a secret in configuration
// (their error says so and names the parameter only). Errors never echo a
// parameter's value, nor a name that does not look like a parameter name.
func Parse(u *url.URL, allowed, refused []string) (map[string]string, error) {
	vals, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("the query is malformed; check its percent-encoding")
	}
	q := make(map[string]string, len(vals))
	for k, v := range vals {
		switch {
		case slices.Contains(refused, k):
			return nil, fmt.Errorf("parameter %q would put a secret in configuration; keep it in a file or the environment", k)
		case !slices.Contains(allowed, k):
			return nil, fmt.Errorf("%s is not known%s (known: %s)", Name(k), suggest(k, allowed), strings.Join(allowed, ", "))
		case len(v) != 1:
			return nil, fmt.Errorf("%s appears %d times", Name(k), len(v))
		}
		q[k] = v[0]
	}
	return q, nil
}

// Name quotes a parameter name for an error when it looks like one;
// anything else (a value pasted in the wrong place) is not echoed.
func Name(k string) string {
	if len(k) > 32 || k == "" || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return "an unknown parameter (not shown)"
	}
	return fmt.Sprintf("parameter %q", k)
}

// suggest returns `; did you mean "x"?` for the allowed name closest to k
// (see Nearest), if k looks like a parameter name.
func suggest(k string, allowed []string) string {
	if Name(k) != fmt.Sprintf("parameter %q", k) {
		return ""
	}
	if best := Nearest(k, allowed); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return ""
}

// Nearest returns the candidate closest to s, ignoring case, '-' and '_',
// within two edits; "" when none is that close. It serves every "did you
// mean" of pgsecure (URI parameters and schemes, libpq keys and values).
func Nearest(s string, candidates []string) string {
	norm := strings.NewReplacer("-", "", "_", "")
	key := norm.Replace(strings.ToLower(s))
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := distance(key, norm.Replace(strings.ToLower(c))); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
