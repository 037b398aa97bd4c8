package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/pgsecure/pgsecure/internal/files"
	"github.com/pgsecure/pgsecure/internal/libpq"
	"github.com/pgsecure/pgsecure/internal/x509check"
)

// crlInfo is one certificate revocation list the check verified the server
// chain against (sslcrl, sslcrldir, PGSSLCRL, PGSSLCRLDIR, --crl, --crl-dir).
type crlInfo struct {
	File       string     `json:"file"`
	Issuer     string     `json:"issuer"`
	Number     string     `json:"crl_number,omitempty"`
	ThisUpdate time.Time  `json:"this_update"`
	NextUpdate *time.Time `json:"next_update,omitempty"`
	Revoked    int        `json:"revoked_entries"`
}

// crlExpiryLog starts the library's warning about a CRL close to its
// nextUpdate, as warnCollector keeps it (without "pgsecure: ").
const crlExpiryLog = "certificate revocation list expires soon"

// hashedCRL is a file name `openssl rehash` gives a CRL.
var hashedCRL = regexp.MustCompile(`^[0-9a-f]{8}\.r[0-9]+$`)

// loadCRLInfo describes the CRLs the DSN (completed from the environment)
// and the --crl / --crl-dir flags name. Files that cannot be read are left
// out: the builder refuses them with its own message.
func loadCRLInfo(dsn string, o checkOptions) []crlInfo {
	settings, _ := libpq.Parse(dsn)
	var paths []string
	for _, f := range []string{settings["sslcrl"], o.crlFile} {
		if f != "" {
			paths = append(paths, f)
		}
	}
	dirs := strings.Split(settings["sslcrldir"], string(os.PathListSeparator))
	for _, d := range append(dirs, o.crlDir) {
		if d == "" {
			continue
		}
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if hashedCRL.MatchString(e.Name()) {
				paths = append(paths, filepath.Join(d, e.Name()))
			}
		}
	}
	var out []crlInfo
	for _, p := range paths {
		b, err := files.ReadUpTo(p, 64<<20, nil)
		if err != nil {
			continue
		}
		crls, err := x509check.ParseCRLs(b, p)
		if err != nil {
			continue
		}
		for _, c := range crls {
			l := c.List
			info := crlInfo{File: p, Issuer: l.Issuer.String(), ThisUpdate: l.ThisUpdate.UTC(), Revoked: len(l.RevokedCertificateEntries)}
			if l.Number != nil {
				info.Number = l.Number.String()
			}
			if !l.NextUpdate.IsZero() {
				next := l.NextUpdate.UTC()
				info.NextUpdate = &next
			}
			out = append(out, info)
		}
	}
	return out
}

// crlWarnAt is how long before its nextUpdate a CRL is reported as expiring:
// a quarter of its validity period (a CRL re-issued daily warns 6 hours
// ahead, a monthly one a week ahead), and never earlier than --expiry-days.
func crlWarnAt(c crlInfo, expiryDays int) time.Duration {
	warn := c.NextUpdate.Sub(c.ThisUpdate) / 4
	return min(warn, time.Duration(expiryDays)*24*time.Hour)
}

// judgeCRLs reports the revocation verdict and each CRL's nextUpdate: an
// expired CRL is insecure (libpq and pgsecure then refuse every connection it
// covers), one close to its nextUpdate is a warning, like a certificate close
// to expiry.
func (r *checkReport) judgeCRLs(expiryDays int, now time.Time) {
	if len(r.CRLs) == 0 {
		return
	}
	if r.passed(stageChain) {
		r.add("revocation", sevOK, fmt.Sprintf("no certificate of the server's chain is revoked (checked against %d certificate revocation list(s), as libpq's sslcrl/sslcrldir)", len(r.CRLs)), "")
	}
	fix := "fetch a fresh CRL from the CA (with OpenSSL: openssl ca -gencrl -out FILE) and replace the file; pgsecure re-reads it for the next connection"
	for _, c := range r.CRLs {
		what := fmt.Sprintf("CRL of %q in %s", c.Issuer, c.File)
		switch {
		case c.NextUpdate == nil:
			r.add("crl_expiry", sevOK, what+" has no nextUpdate (it does not expire)", "")
		case !c.NextUpdate.After(now):
			r.add("crl_expiry", sevInsecure, fmt.Sprintf("%s expired on %s (nextUpdate): connections it covers are refused", what, c.NextUpdate.Format(time.RFC3339)), fix)
		case c.NextUpdate.Sub(now) < crlWarnAt(c, expiryDays):
			r.add("crl_expiry", sevWarning, fmt.Sprintf("%s expires in %s (nextUpdate %s)", what, roundLeft(c.NextUpdate.Sub(now)), c.NextUpdate.Format(time.RFC3339)), fix)
		default:
			r.add("crl_expiry", sevOK, fmt.Sprintf("%s: next update %s (in %s)", what, c.NextUpdate.Format(time.RFC3339), roundLeft(c.NextUpdate.Sub(now))), "")
		}
	}
}

// roundLeft spells a remaining time in days, or hours under two days.
func roundLeft(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return fmt.Sprintf("%d hours", int(d/time.Hour))
}

// crlRows prints the CRLs in the table report.
func (t table) crls(r *checkReport) {
	for i, c := range r.CRLs {
		t.section(fmt.Sprintf("certificate revocation list [%d]", i))
		t.row("issuer", "%s", c.Issuer)
		t.row("file", "%s", c.File)
		if c.Number != "" {
			t.row("crl number", "%s", c.Number)
		}
		t.row("this update", "%s", c.ThisUpdate.Format(time.RFC3339))
		if c.NextUpdate != nil {
			t.row("next update", "%s", c.NextUpdate.Format(time.RFC3339))
		} else {
			t.row("next update", "none")
		}
		t.row("revoked entries", "%d", c.Revoked)
	}
}
