package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

func renderJSON(w io.Writer, o *checkOutput) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(o)
}

// renderTable prints the report as aligned "label  value" rows: every detail
// for a single target, the stages and findings of each target for several.
func renderTable(w io.Writer, o *checkOutput) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	t := table{tw}
	fleet := len(o.Targets) > 1
	for i, r := range o.Targets {
		if fleet {
			fmt.Fprintf(tw, "== target %d of %d: %s\n", i+1, len(o.Targets), r.Target)
		} else {
			t.details(r)
		}
		t.stagesAndFindings(r, fleet)
		fmt.Fprintf(tw, "result: %s (exit %d)\n", strings.ToUpper(r.Verdict), r.ExitCode)
	}
	if len(o.Targets) > 1 {
		t.section("summary")
		for _, r := range o.Targets {
			t.row(strings.ToUpper(r.Verdict), "exit %d  %s", r.ExitCode, r.Target)
		}
		fmt.Fprintf(tw, "overall: %s (exit %d)\n", strings.ToUpper(o.Verdict), o.ExitCode)
	}
	return tw.Flush()
}

type table struct{ tw *tabwriter.Writer }

func (t table) row(label string, format string, args ...any) {
	fmt.Fprintf(t.tw, "  %s\t%s\n", label, fmt.Sprintf(format, args...))
}

func (t table) section(title string) { fmt.Fprintf(t.tw, "%s\n", title) }

func (t table) details(r *checkReport) {
	if r.User != "" || r.Addr != "" {
		t.section("connection")
		if r.Addr != "" {
			t.row("server", "%s (certificate checked for %q)", r.Addr, r.ServerName)
		}
		t.row("user / database", "%s / %s", orDash(r.User), orDash(r.Database))
	}
	if r.TLS != nil {
		t.row("TLS version", "%s", r.TLS.Version)
		t.row("cipher", "%s", r.TLS.Cipher)
		if r.BackendPID != 0 {
			t.row("backend pid", "%d", r.BackendPID)
		}
	}
	for i, c := range r.ServerChain {
		t.section(fmt.Sprintf("server certificate [%d]", i))
		t.row("subject", "%s", c.Subject)
		t.row("issuer", "%s", c.Issuer)
		if i == 0 && len(c.DNSNames) == 0 && len(c.IPAddresses) == 0 && r.passed(stageHost) {
			t.row("names", "none: the host was matched against the subject's Common Name, as libpq does")
		} else {
			t.row("DNS names", "%s", orDash(strings.Join(c.DNSNames, ", ")))
			t.row("IP addresses", "%s", orDash(strings.Join(c.IPAddresses, ", ")))
		}
		t.row("serial", "%s", c.Serial)
		t.row("expires", "%s (in %d days)", c.NotAfter.Format(time.RFC3339), c.ExpiresInDays)
		if i == 0 {
			t.row("SPKI pin", "%s", c.SPKIPin)
		}
	}
	t.crls(r)
	if s := r.PgStatSSL; s != nil {
		t.section("pg_stat_ssl (the server's view)")
		t.row("ssl", "%t", s.SSL)
		t.row("version", "%s", s.Version)
		t.row("cipher", "%s (%d bits)", s.Cipher, s.Bits)
		t.row("client DN", "%s", orDash(s.ClientDN))
		if s.ClientDN != "" {
			t.row("client serial", "%s", s.ClientSerial)
			t.row("issuer DN", "%s", s.IssuerDN)
		}
	}
	if a := r.Auth; a != nil {
		t.section("authentication")
		t.row("method", "%s", orDash(a.Method))
		if a.SASLMechanism != "" {
			t.row("channel binding", "%s (SASL mechanism %s; server offered %s)", yesNo(a.ChannelBinding), a.SASLMechanism, strings.Join(a.SASLOffered, ", "))
		}
	}
	if p := r.Probe; p != nil {
		t.section("plaintext probe")
		t.row("result", "%s", p.Result)
		if p.SQLState != "" { // otherwise Message is why the probe could not tell: its finding says it
			t.row("server said", "%s", strings.TrimSpace(p.SQLState+" "+p.Message))
		}
	}
}

// stagesAndFindings prints a target's stages and findings; brief (for a
// fleet) leaves out what passed: the stages when all passed, and ok and info
// findings (--json has everything).
func (t table) stagesAndFindings(r *checkReport, brief bool) {
	if (!brief || !allPassed(r.Stages)) && !noneReached(r.Stages) {
		t.section("stages")
		for _, s := range r.Stages {
			if s.Detail != "" {
				t.row(s.Name, "%s: %s", s.Result, s.Detail)
			} else {
				t.row(s.Name, "%s", s.Result)
			}
		}
	}
	t.section("findings")
	for _, f := range r.Findings {
		if brief && (f.Severity == sevOK || f.Severity == sevInfo) {
			continue
		}
		t.row(strings.ToUpper(f.Severity), "%s", f.Message)
		if f.Fix != "" {
			t.row("", "fix: %s", f.Fix)
		}
	}
	if r.Error != "" {
		t.row("ERROR", "%s", r.Error)
	}
	if r.Hint != "" {
		t.row("HINT", "%s", r.Hint)
	}
}

// passed reports whether the stage called name passed.
func (r *checkReport) passed(name string) bool {
	for _, s := range r.Stages {
		if s.Name == name {
			return s.Result == stagePassed
		}
	}
	return false
}

func allPassed(stages []stage) bool {
	for _, s := range stages {
		if s.Result != stagePassed {
			return false
		}
	}
	return true
}

// noneReached: no connection was tried (the DSN or flags were refused), so
// the stages say nothing the error does not.
func noneReached(stages []stage) bool {
	for _, s := range stages {
		if s.Result != stageNotReached {
			return false
		}
	}
	return true
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
