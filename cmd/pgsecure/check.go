package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/cmd/pgsecure/internal/pgwire"
	"github.com/pgsecure/pgsecure/internal/x509check"
	"github.com/pgsecure/pgsecure/secrets"
	_ "github.com/pgsecure/pgsecure/secrets/awssm" // awssm:// and rdsiam:// for --credentials
	_ "github.com/pgsecure/pgsecure/secrets/vault" // vault:// for --credentials
)

type checkOptions struct {
	ca, cert, key, credentials, targetsFile, audit string
	crlFile, crlDir                                string
	systemRoots, json                              bool
	noProbe                                        bool // certs renew: only the certificate matters
	timeout, probeTimeout                          time.Duration
	parallel, expiryDays                           int
	pins                                           listFlag
}

func runCheck(args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	var o checkOptions
	fs := flag.NewFlagSet("pgsecure check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ca, "ca", "", "PEM `FILE` of the CA that issued the server certificate (sslrootcert)")
	fs.StringVar(&o.crlFile, "crl", "", "PEM `FILE` of certificate revocation lists to check the server chain against (sslcrl)")
	fs.StringVar(&o.crlDir, "crl-dir", "", "`DIR` of CRLs prepared with openssl rehash (sslcrldir)")
	fs.BoolVar(&o.systemRoots, "system-roots", false, "trust the system CA store instead (publicly-issued server certificates only)")
	fs.StringVar(&o.cert, "cert", "", "client certificate `FILE` (with --key)")
	fs.StringVar(&o.key, "key", "", "client private key `FILE` (with --cert)")
	fs.Var(&o.pins, "pin", "also require this SPKI pin (base64 SHA-256) in the server's chain; repeatable")
	fs.StringVar(&o.credentials, "credentials", "", "secret source `URI` for user and password (env:, file:/run/secrets/db, vault://..., awssm://...)")
	fs.StringVar(&o.targetsFile, "targets", "", "`FILE` of DSNs to check, one a line (blank lines and lines starting with # are skipped)")
	fs.StringVar(&o.audit, "audit", "auto", "server audit: auto (everything the role may read; the rest is reported as not checked) or off")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON (schema: SCHEMA.md)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "give up on a target after this long")
	fs.DurationVar(&o.probeTimeout, "probe-timeout", 5*time.Second, "time allowed to the plaintext probe, on top of --timeout")
	fs.IntVar(&o.parallel, "parallel", 4, "check up to `N` targets at once")
	fs.IntVar(&o.expiryDays, "expiry-days", 30, "warn when a certificate expires in fewer than `N` days")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: pgsecure check [flags] [DSN ...]\n\nEach DSN is a libpq connection string or URL; missing keys come from the PG* environment variables.\n"+
			"Without DSN or --targets, the PG* environment variables alone name the server.\n\n")
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\n"+exitCodeHelp)
	}
	pos, err := parseArgs(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		return exitUsage // the flag package printed the problem and the usage
	case (o.cert == "") != (o.key == ""):
		return usageError(stderr, "--cert and --key go together")
	case o.timeout <= 0 || o.probeTimeout <= 0:
		return usageError(stderr, "--timeout and --probe-timeout must be positive")
	case o.parallel < 1:
		return usageError(stderr, "--parallel must be at least 1")
	case o.expiryDays < 0:
		return usageError(stderr, "--expiry-days must not be negative")
	case o.audit != "auto" && o.audit != "off":
		return usageError(stderr, "--audit is auto or off, not %q", o.audit)
	}
	dsns := pos
	if o.targetsFile != "" {
		more, err := readTargets(o.targetsFile)
		if err != nil {
			return usageError(stderr, "%v", err)
		}
		dsns = append(dsns, more...)
	}
	if len(dsns) == 0 {
		dsns = []string{""}
	}

	out := &checkOutput{Targets: checkAll(o, dsns, env)}
	out.summarize()
	var b strings.Builder
	if o.json {
		err = renderJSON(&b, out)
	} else {
		err = renderTable(&b, out)
	}
	if err != nil {
		fmt.Fprintln(stderr, "pgsecure check: cannot print the report:", err)
		return exitUsage
	}
	// Nothing is rewritten here: the target labels are redacted where they
	// are made (targetLabel), and pgsecure's messages carry no secret.
	fmt.Fprint(stdout, b.String())
	// The table shows each error with its hint; a JSON document is for
	// programs, so people get the errors on stderr, once each.
	for _, r := range out.Targets {
		if o.json && r.Error != "" {
			fmt.Fprintln(stderr, "pgsecure check: "+r.Target+": "+r.Error)
		}
	}
	return out.ExitCode
}

func usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "pgsecure check: "+format+"\n", args...)
	return exitUsage
}

// checkAll checks every target, o.parallel at a time, each within its own
// timeout, and returns the reports in the order of dsns.
func checkAll(o checkOptions, dsns []string, env func(string) (string, bool)) []*checkReport {
	reports := make([]*checkReport, len(dsns))
	sem := make(chan struct{}, o.parallel)
	var wg sync.WaitGroup
	for i, dsn := range dsns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			reports[i] = inspect(context.Background(), o, dsn, env)
		}()
	}
	wg.Wait()
	return reports
}

// inspect connects to one target through the pgsecure builder exactly as an
// application would, audits the server, probes its plaintext policy, and
// reports.
func inspect(parent context.Context, o checkOptions, dsn string, env func(string) (string, bool)) *checkReport {
	r := &checkReport{Target: targetLabel(dsn), Findings: []finding{}}
	ctx, cancel := context.WithTimeout(parent, o.timeout)
	defer cancel()
	failConfig := func(err error) *checkReport {
		attributeFlags(err)
		r.recordFailure(err, &progress{}, o.timeout, time.Now())
		r.finish()
		return r
	}
	b, rd, closeSource, err := newBuilder(ctx, o, dsn, env)
	if err != nil {
		return failConfig(err)
	}
	defer closeSource()
	warnings := &warnCollector{}
	b.Logger(slog.New(warnings))
	cfg, err := b.Config(ctx)
	if err != nil {
		rd.attribute(err)
		return failConfig(err)
	}
	r.User, r.Database = cfg.ConnConfig.User, cfg.ConnConfig.Database
	r.CRLs = loadCRLInfo(rd.dsn, o)
	probeAddr := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))

	connErr := connect(ctx, cfg, r, o, b.Explain)
	if connErr != nil {
		if why := x509check.ExplainHandshakeFailure(ctx, probeAddr, connErr); why != "" {
			r.add("tls", sevInfo, why, "") // an RSA-PSS server key: a Go limit, not an attack
		}
	}
	reached := r.passed(stageTCP) // else the error says all: no probe, no audit
	switch {
	case connErr == nil:
		probeAddr = r.Addr
	case o.audit != "off" && reached:
		r.add("audit", sevUnchecked, "server audit not checked: it needs a successful login", "")
	}
	// The probe has its own time: a target that used up --timeout still
	// gets a fair plaintext probe.
	if !o.noProbe && reached {
		r.Probe = probe(context.WithoutCancel(parent), o.probeTimeout, probeAddr, r.User, r.Database)
	}
	for _, w := range warnings.messages() {
		if strings.HasPrefix(w, crlExpiryLog) {
			continue // judgeCRLs reports it, with the CRL's details
		}
		r.add("configuration", sevWarning, w, "")
	}
	r.judge(o.expiryDays)
	return r
}

// newBuilder returns a pgsecure builder for dsn completed from the PG*
// variables of env, with the command-line trust anchors, client certificate,
// pins and credentials of o. The caller calls closeSource when done.
func newBuilder(ctx context.Context, o checkOptions, dsn string, env func(string) (string, bool)) (
	b *pgsecure.Builder, rd resolvedDSN, closeSource func(), err error) {
	closeSource = func() {}
	rd = resolveDSN(dsn, env)
	b = pgsecure.NewBuilder(rd.dsn).QueryServerEveryConnection() // an audit wants the server's own words
	if o.ca != "" {
		b.RootCAFile(o.ca)
	}
	if o.systemRoots {
		b.SystemRoots()
	}
	if o.crlFile != "" {
		b.CRLFiles(o.crlFile)
	}
	if o.crlDir != "" {
		b.CRLDir(o.crlDir)
	}
	clientCertificate(b, o.cert, o.key, o.pins)
	if o.credentials != "" {
		src, err := secrets.Open(ctx, o.credentials)
		if err != nil {
			return nil, rd, closeSource, fmt.Errorf("--credentials: %w", err)
		}
		if c, ok := src.(secrets.Closer); ok {
			closeSource = func() { c.Close(context.WithoutCancel(ctx)) }
		}
		b.Credentials(src)
	}
	b.BeforeConnect(func(_ context.Context, cc *pgx.ConnConfig) error {
		if cc.Password == "" {
			cc.Password, _ = env("PGPASSWORD")
		}
		return nil
	})
	return b, rd, closeSource, nil
}

// connect opens one connection with cfg, the way pgxpool does (BeforeConnect
// on a copy of the ConnConfig, pgx.ConnectConfig, AfterConnect), records what
// pgsecure verified and what the observer saw of the authentication, and
// audits the server over it.
//
// The observer is installed after BeforeConnect, outermost, so that it sees
// the server's authentication request even when pgsecure's policy refuses it
// (a frontend set before BeforeConnect runs inside pgsecure's; one set after
// it must let pgsecure find the connection under it: the tap does).
func connect(ctx context.Context, cfg *pgxpool.Config, r *checkReport, o checkOptions, explain func(error) error) error {
	obs, prog := &pgwire.Observer{}, &progress{}
	fail := func(err error) error {
		err = explain(err) // one line, problem first, as Build would say it
		if a, ok := obs.Last(); ok {
			r.setAuth(a)
			r.User, r.Database = orElse(a.User, r.User), orElse(a.Database, r.Database)
		}
		r.recordFailure(err, prog, o.timeout, time.Now())
		return err
	}
	cc := cfg.ConnConfig.Copy()
	if cfg.BeforeConnect != nil {
		if err := cfg.BeforeConnect(ctx, cc); err != nil {
			return fail(err)
		}
	}
	cc.BuildFrontend = obs.BuildFrontend(cc.BuildFrontend)
	prog.install(&cc.Config)
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fail(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if cfg.AfterConnect != nil {
		if err := cfg.AfterConnect(ctx, conn); err != nil {
			return fail(err)
		}
	}
	pgc := conn.PgConn()
	v, err := pgsecure.ConnReport(conn)
	if err != nil {
		return fail(err)
	}
	r.Stages = passedStages()
	r.setVerified(v, time.Now())
	a, _ := obs.Auth(pgc.PID())
	r.setAuth(a)
	r.User, r.Database = conn.Config().User, conn.Config().Database
	if o.audit != "off" {
		r.auditServer(ctx, conn)
	}
	return nil
}

// probe runs the plaintext probe within its own timeout.
func probe(ctx context.Context, timeout time.Duration, addr, user, database string) *probeInfo {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := pgwire.ProbePlaintext(ctx, addr, user, database)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return &probeInfo{Result: "unknown", Message: fmt.Sprintf(
			"the plaintext probe got no answer from %s within --probe-timeout %s: whether the server accepts connections without TLS is unknown", addr, timeout)}
	case err != nil:
		return &probeInfo{Result: "unknown", Message: fmt.Sprintf(
			"the plaintext probe could not complete (%s): whether the server accepts connections without TLS is unknown",
			strings.TrimPrefix(err.Error(), "pgsecure: plaintext probe: "))}
	}
	p := &probeInfo{Result: string(res.Verdict), SQLState: res.SQLState, Message: res.Message}
	if res.Verdict == pgwire.Accepted {
		code := int(res.AuthCode)
		p.AuthCode = &code
	}
	return p
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
