package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/pgsecure/pgsecure/internal/libpq"
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

// targetLabel names a target in reports: its DSN as pgsecure's parser
// (pgx's) reads it, every secret value (password, sslpassword, however
// written) replaced by a redaction marker; a DSN that cannot be parsed is
// not shown at all, since nothing can say where a password is in it.
func targetLabel(dsn string) string {
	if dsn == "" {
		return "(PG* environment variables)"
	}
	label, err := libpq.Redact(dsn, secrets.Redacted)
	if err != nil {
		return "(a connection string that cannot be parsed: not shown, it may hold a password)"
	}
	return label
}
