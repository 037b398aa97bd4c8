package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

func renderJSON(w io.Writer, r *checkReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// renderTable prints the report as aligned "label  value" rows.
func renderTable(w io.Writer, r *checkReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(label string, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t%s\n", label, fmt.Sprintf(format, args...))
	}
	section := func(title string) { fmt.Fprintf(tw, "%s\n", title) }

	if r.User != "" || r.Addr != "" {
		section("connection")
		if r.Addr != "" {
			row("server", "%s (certificate checked for %q)", r.Addr, r.ServerName)
		}
		row("user / database", "%s / %s", orDash(r.User), orDash(r.Database))
	}
	if r.TLS != nil {
		row("TLS version", "%s", r.TLS.Version)
		row("cipher", "%s", r.TLS.Cipher)
		row("backend pid", "%d", r.BackendPID)
	}
	for i, c := range r.ServerChain {
		section(fmt.Sprintf("server certificate [%d]", i))
		row("subject", "%s", c.Subject)
		row("issuer", "%s", c.Issuer)
		row("DNS names", "%s", orDash(strings.Join(c.DNSNames, ", ")))
		row("IP addresses", "%s", orDash(strings.Join(c.IPAddresses, ", ")))
		row("expires", "%s (in %d days)", c.NotAfter.Format(time.RFC3339), c.ExpiresInDays)
		if i == 0 {
			row("SPKI pin", "%s", c.SPKIPin)
		}
	}
	if s := r.PgStatSSL; s != nil {
		section("pg_stat_ssl (the server's view)")
		row("ssl", "%t", s.SSL)
		row("version", "%s", s.Version)
		row("cipher", "%s (%d bits)", s.Cipher, s.Bits)
		row("client DN", "%s", orDash(s.ClientDN))
		if s.ClientDN != "" {
			row("client serial", "%s", s.ClientSerial)
			row("issuer DN", "%s", s.IssuerDN)
		}
	}
	if a := r.Auth; a != nil {
		section("authentication")
		row("method", "%s", orDash(a.Method))
		if a.SASLMechanism != "" {
			row("SASL mechanism", "%s (server offered %s)", a.SASLMechanism, strings.Join(a.SASLOffered, ", "))
			row("channel binding", "%t", a.ChannelBinding)
		}
	}
	if p := r.Probe; p != nil {
		section("plaintext probe")
		row("result", "%s", p.Result)
		if p.SQLState != "" || p.Message != "" {
			row("server said", "%s", strings.TrimSpace(p.SQLState+" "+p.Message))
		}
	}
	section("findings")
	for _, f := range r.Findings {
		row(strings.ToUpper(f.Severity), "%s", f.Message)
	}
	if r.Error != "" {
		row("ERROR", "%s", r.Error)
	}
	verdict := "SECURE"
	switch {
	case r.ExitCode == exitUsage:
		verdict = "CONFIGURATION ERROR"
	case !r.Secure:
		verdict = "NOT SECURE"
	}
	fmt.Fprintf(tw, "result: %s (exit %d)\n", verdict, r.ExitCode)
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
