package libpq

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// canonicalKey mirrors pgx: dbname is an alias of database.
func canonicalKey(k string) string {
	if k == "dbname" {
		return "database"
	}
	return k
}

// QuoteValue quotes a value for libpq's keyword/value form.
func QuoteValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// ParseURLQuery returns the query parameters of a postgres:// URL, with
// libpq's rules: '&'-separated, one '=', percent-decoded, last one wins.
func ParseURLQuery(s string) (map[string]string, error) {
	out := map[string]string{}
	_, query, found := strings.Cut(s, "?")
	if !found || query == "" {
		return out, nil
	}
	for _, pair := range strings.Split(query, "&") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, errors.New(`a query parameter has no "="`)
		}
		key, err := url.PathUnescape(k)
		if err != nil {
			return nil, errors.New("a query parameter name is not valid percent-encoding")
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("the value of %q is not valid percent-encoding", key)
		}
		out[canonicalKey(strings.TrimSpace(key))] = strings.TrimSpace(val)
	}
	return out, nil
}

// ParseKeywordValue parses libpq's "key=value key2='quoted value'" form.
func ParseKeywordValue(s string) (map[string]string, error) {
	out := map[string]string{}
	const space = " \t\n\r\v\f"
	s = strings.TrimLeft(s, space)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, errors.New(`expected "key=value"`)
		}
		key := strings.Trim(s[:eq], space)
		if key == "" || strings.ContainsAny(key, space) {
			return nil, fmt.Errorf("invalid key %q", key)
		}
		s = strings.TrimLeft(s[eq+1:], space)
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			i, closed := 1, false
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					val.WriteByte(s[i])
					continue
				}
				if s[i] == '\'' {
					closed = true
					break
				}
				val.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted value for %q", key)
			}
			s = s[i+1:]
		} else {
			i := 0
			for ; i < len(s) && !strings.ContainsRune(space, rune(s[i])); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[i:]
		}
		out[canonicalKey(key)] = val.String()
		s = strings.TrimLeft(s, space)
	}
	return out, nil
}

// UserinfoPassword returns the password part of a URL's userinfo (raw).
func UserinfoPassword(s string) string {
	_, rest, _ := strings.Cut(s, "://")
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}
