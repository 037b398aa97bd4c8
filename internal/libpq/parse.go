package libpq

import (
	"errors"
	"slices"
	"strings"
)

// This file is pgsecure's only reader of connection strings. It follows
// pgx v5.12's parser (pgconn/parse_url.go and parseKeywordValueSettings in
// pgconn/config.go, themselves libpq's conninfo_uri_parse_options and
// conninfo_parse) step by step, so that what pgsecure checks is what pgx
// uses; FuzzParseMatchesPgx compares the two byte for byte. It differs from
// pgx in one way only: no error quotes any part of the input, which may
// hold a password (a mislaid one lands in a host or port position).
//
// Parse's result is then the single source of truth: Render turns it into
// the keyword/value string handed to pgx, whose every value is quoted, so
// pgx cannot read it any other way.

// IsURL reports whether s is in URL form ("postgres://" or
// "postgresql://"), as pgx decides it.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Parse returns the settings a connection string (URL or keyword/value
// form) sets, keyed as pgx keys them (dbname is "database"), exactly as pgx
// v5.12 reads them. Environment variables and defaults are not applied.
func Parse(s string) (map[string]string, error) {
	if IsURL(s) {
		return parseURL(s)
	}
	return parseKeywordValue(s)
}

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

// ValidKey reports whether k can be written as a key of a keyword/value
// string and read back as the same key: letters, digits, '_', '.' and '-'.
// Every libpq key, pgx's pool keys and server parameter names (custom ones
// have a dot) qualify.
func ValidKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Render writes settings as a keyword/value string, keys sorted, every
// value quoted. Parse(Render(m)) is m for every m whose keys are ValidKey
// (an empty user is dropped, as pgx drops it).
func Render(settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + QuoteValue(settings[k]))
	}
	return b.String()
}

const kvSpace = " \t\n\r\v\f"

func isKVSpace(c byte) bool { return strings.IndexByte(kvSpace, c) >= 0 }

// parseKeywordValue follows pgx's parseKeywordValueSettings.
func parseKeywordValue(s string) (map[string]string, error) {
	settings := map[string]string{}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, errors.New("it contains a NUL byte")
	}
	s = strings.TrimLeft(s, kvSpace)
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, errors.New(`expected "key=value"`)
		}
		key := strings.Trim(s[:eq], kvSpace)
		if strings.ContainsAny(key, kvSpace) {
			return nil, errors.New(`a key is followed by a space instead of "="`)
		}
		s = strings.TrimLeft(s[eq+1:], kvSpace)
		var val string
		switch {
		case len(s) == 0:
		case s[0] != '\'':
			end := 0
			for ; end < len(s); end++ {
				if isKVSpace(s[end]) {
					break
				}
				if s[end] == '\\' {
					end++
					if end == len(s) {
						break
					}
				}
			}
			val = unescape(s[:end])
			s = strings.TrimLeft(s[end:], kvSpace)
		default:
			s = s[1:]
			end := 0
			for ; end < len(s); end++ {
				if s[end] == '\'' {
					break
				}
				if s[end] == '\\' {
					end++
					if end == len(s) {
						break
					}
				}
			}
			if end >= len(s) {
				return nil, errors.New("a quoted value is not terminated")
			}
			val = unescape(s[:end])
			s = strings.TrimLeft(s[end+1:], kvSpace)
		}
		key = canonicalKey(key)
		if key == "" {
			return nil, errors.New(`a "=" has no key before it`)
		}
		if key == "user" && val == "" {
			continue
		}
		settings[key] = val
	}
	return settings, nil
}

// unescape drops each backslash and keeps the byte after it; a trailing
// backslash escapes the end of the string.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			if i == len(s) {
				break
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseURL follows pgx's parseURLSettings: the user information ends at the
// first '@' before any '/' (so a '?' or '#' in a password is the
// password's), hosts and ports are comma-separated lists, the path is the
// database up to the first '?', and the query is '&'-separated key=value
// pairs, last one wins, ssl=true meaning sslmode=require.
func parseURL(s string) (map[string]string, error) {
	settings := map[string]string{}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, errors.New("it contains a NUL byte")
	}
	p, ok := strings.CutPrefix(s, "postgresql://")
	if !ok {
		p, _ = strings.CutPrefix(s, "postgres://")
	}
	if i := strings.IndexAny(p, "@/"); i >= 0 && p[i] == '@' {
		user, password, hasPassword := strings.Cut(p[:i], ":")
		p = p[i+1:]
		if user != "" {
			v, err := uriDecode(user, "the user name")
			if err != nil {
				return nil, err
			}
			settings["user"] = v
		}
		if hasPassword && password != "" {
			v, err := uriDecode(password, "the password")
			if err != nil {
				return nil, err
			}
			settings["password"] = v
		}
	}
	var hosts, ports strings.Builder
	for {
		if strings.HasPrefix(p, "[") {
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return nil, errors.New(`an IPv6 address has no closing "]"`)
			}
			if end == 1 {
				return nil, errors.New("an IPv6 address is empty")
			}
			hosts.WriteString(p[1:end])
			p = p[end+1:]
			if p != "" && !strings.ContainsRune(":/?,", rune(p[0])) {
				return nil, errors.New(`an IPv6 address in brackets is followed by something other than ":", "/", "?" or ","`)
			}
		} else {
			i := strings.IndexAny(p, ":/?,")
			if i < 0 {
				i = len(p)
			}
			hosts.WriteString(p[:i])
			p = p[i:]
		}
		if strings.HasPrefix(p, ":") {
			p = p[1:]
			i := strings.IndexAny(p, "/?,")
			if i < 0 {
				i = len(p)
			}
			ports.WriteString(p[:i])
			p = p[i:]
		}
		if !strings.HasPrefix(p, ",") {
			break
		}
		p = p[1:]
		hosts.WriteByte(',')
		ports.WriteByte(',')
	}
	if hosts.Len() > 0 {
		v, err := uriDecode(hosts.String(), "the host list")
		if err != nil {
			return nil, err
		}
		settings["host"] = v
	}
	if ports.Len() > 0 {
		v, err := uriDecode(ports.String(), "the port list")
		if err != nil {
			return nil, err
		}
		settings["port"] = v
	}
	if strings.HasPrefix(p, "/") {
		db := p[1:]
		p = ""
		if i := strings.IndexByte(db, '?'); i >= 0 {
			db, p = db[:i], db[i:]
		}
		if db != "" {
			v, err := uriDecode(db, "the database name")
			if err != nil {
				return nil, err
			}
			settings["database"] = v
		}
	}
	if strings.HasPrefix(p, "?") {
		if err := parseQuery(p[1:], settings); err != nil {
			return nil, err
		}
	}
	return settings, nil
}

// parseQuery follows pgx's parseURLQueryParams.
func parseQuery(params string, settings map[string]string) error {
	query := map[string]string{}
	sslWasLast := false
	for params != "" {
		pair := params
		if i := strings.IndexByte(params, '&'); i >= 0 {
			pair, params = params[:i], params[i+1:]
		} else {
			params = ""
		}
		rawKey, rawValue, found := strings.Cut(pair, "=")
		if !found {
			return errors.New(`a query parameter has no "="`)
		}
		if strings.IndexByte(rawValue, '=') >= 0 {
			return errors.New(`a query parameter has a second "=" (percent-encode it as %3D)`)
		}
		key, err := uriDecode(rawKey, "a query parameter name")
		if err != nil {
			return err
		}
		key = canonicalKey(key)
		value, err := uriDecode(rawValue, "the value of a query parameter")
		if err != nil {
			return err
		}
		switch key {
		case "ssl":
			sslWasLast = true
		case "sslmode":
			sslWasLast = false
		}
		query[key] = value
	}
	if v, ok := query["ssl"]; ok && v == "true" {
		delete(query, "ssl")
		if sslWasLast {
			query["sslmode"] = "require"
		}
	}
	for k, v := range query {
		settings[k] = v
	}
	return nil
}

// uriDecode follows pgx's (and libpq's) percent-decoding: %XX with two hex
// digits, %00 forbidden, leading and trailing spaces skipped, inner spaces
// refused. Errors name what (a part of the URL) only.
func uriDecode(raw, what string) (string, error) {
	var b strings.Builder
	i := 0
	for i < len(raw) && raw[i] == ' ' {
		i++
	}
	for i < len(raw) && raw[i] != ' ' {
		if raw[i] != '%' {
			b.WriteByte(raw[i])
			i++
			continue
		}
		var hi, lo byte
		var ok1, ok2 bool
		if i+1 < len(raw) {
			hi, ok1 = hexDigit(raw[i+1])
		}
		if i+2 < len(raw) {
			lo, ok2 = hexDigit(raw[i+2])
		}
		if !ok1 || !ok2 {
			return "", errors.New(what + ` has a "%" that is not followed by two hex digits (write a literal "%" as %25)`)
		}
		c := hi<<4 | lo
		if c == 0 {
			return "", errors.New(what + " contains %00")
		}
		b.WriteByte(c)
		i += 3
	}
	for i < len(raw) && raw[i] == ' ' {
		i++
	}
	if i < len(raw) {
		return "", errors.New(what + " contains a space (write it as %20)")
	}
	return b.String(), nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// IsSecret reports whether the setting key (as Parse keys it) holds a
// secret: password, sslpassword, oauth_client_secret.
func IsSecret(key string) bool {
	if key == "password" {
		return true
	}
	k, ok := byName[key]
	return ok && k.Secret
}
