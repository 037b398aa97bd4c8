package main

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/pgsecure/pgsecure/secrets"
)

// maxTargets bounds a --targets file, so a wrong file (a binary, a log) is
// refused rather than dialled line by line.
const maxTargets = 10000

// readTargets reads a --targets file: one DSN a line; blank lines and lines
// starting with # are skipped.
func readTargets(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--targets: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(out) == maxTargets {
			return nil, fmt.Errorf("--targets %s: more than %d targets", path, maxTargets)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--targets %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--targets %s: no DSN in the file", path)
	}
	return out, nil
}

// targetLabel names a target in reports: its DSN with any password
// replaced by a redaction marker.
func targetLabel(dsn string) string {
	if dsn == "" {
		return "(PG* environment variables)"
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(unparsable URL)"
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), secrets.Redacted)
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", secrets.Redacted)
			u.RawQuery = q.Encode()
		}
		return strings.Replace(u.String(), url.QueryEscape(secrets.Redacted), secrets.Redacted, -1)
	}
	return kvPassword.ReplaceAllString(dsn, "password="+secrets.Redacted)
}
