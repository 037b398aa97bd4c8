package libpq

import (
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Redact returns a connection string for display: s itself when Parse
// finds no secret in it, otherwise s rebuilt from Parse's settings in its
// own form (URL or keyword/value) with every secret value (IsSecret)
// replaced by marker, however it was written (URL user information or
// query, quoted or escaped keyword value). It returns an error, and no
// text, when s cannot be parsed: then nothing can say where a password is.
//
// Parse(Redact(s)) holds Parse(s)'s settings, secrets replaced by marker.
func Redact(s, marker string) (string, error) {
	settings, err := Parse(s)
	if err != nil {
		return "", err
	}
	hasSecret := false
	for k := range settings {
		if IsSecret(k) {
			settings[k] = marker
			hasSecret = true
		}
	}
	if !hasSecret {
		return s, nil
	}
	if IsURL(s) {
		return redactedURL(s, settings, marker), nil
	}
	var b strings.Builder
	for _, k := range displayOrder(settings) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		name, v := k, settings[k]
		if name == "database" {
			name = "dbname"
		}
		if v == "" || strings.ContainsAny(v, `'\`+kvSpace) {
			v = QuoteValue(v)
		}
		b.WriteString(name + "=" + v)
	}
	return b.String(), nil
}

// redactedURL rebuilds a URL from settings: user information, hosts and
// ports in the authority when they line up, the database as the path, the
// rest as the query. marker is written unencoded.
func redactedURL(s string, settings map[string]string, marker string) string {
	scheme := "postgres://"
	if strings.HasPrefix(s, "postgresql://") {
		scheme = "postgresql://"
	}
	enc := func(v string) string {
		if v == marker {
			return v
		}
		return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
	}
	var b strings.Builder
	b.WriteString(scheme)
	rest := maps.Clone(settings)
	// An empty value goes to the query: in the authority or the path it
	// would read as absent.
	user, pw := rest["user"], rest["password"]
	if user != "" || pw != "" {
		b.WriteString(enc(user))
		if pw != "" {
			b.WriteString(":" + enc(pw))
			delete(rest, "password")
		}
		b.WriteByte('@')
		if user != "" {
			delete(rest, "user")
		}
	}
	hosts := strings.Split(rest["host"], ",")
	ports := strings.Split(rest["port"], ",")
	hasHost := rest["host"] != ""
	_, hasPort := rest["port"]
	// Hosts and ports go to the authority only when they read back as they
	// are: there every ',' also adds an element to the port list.
	if hasHost && (!hasPort && len(hosts) == 1 || hasPort && len(ports) == len(hosts) && rest["port"] != "") {
		for i, h := range hosts {
			if i > 0 {
				b.WriteByte(',')
			}
			if strings.Contains(h, ":") && strings.Trim(h, "0123456789abcdefABCDEF:.") == "" {
				b.WriteString("[" + h + "]")
			} else {
				b.WriteString(enc(h))
			}
			if hasPort && ports[i] != "" {
				b.WriteString(":" + enc(ports[i]))
			}
		}
		delete(rest, "host")
		delete(rest, "port")
	}
	if db := rest["database"]; db != "" {
		b.WriteString("/" + enc(db))
		delete(rest, "database")
	}
	sep := "?"
	for _, k := range displayOrder(rest) {
		b.WriteString(sep + enc(k) + "=" + enc(rest[k]))
		sep = "&"
	}
	return b.String()
}

// displayOrder lists the keys of settings in libpq's documentation order,
// then the others sorted.
func displayOrder(settings map[string]string) []string {
	rank := func(k string) int {
		switch k {
		case "database":
			k = "dbname"
		case "password": // not in Keys: beside passfile, after user
			k = "passfile"
		}
		if i := slices.IndexFunc(Keys, func(key Key) bool { return key.Name == k }); i >= 0 {
			return i
		}
		return len(Keys)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return keys
}
