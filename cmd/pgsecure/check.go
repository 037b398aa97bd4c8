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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/cmd/pgsecure/internal/pgwire"
	"github.com/pgsecure/pgsecure/internal/x509check"
	"github.com/pgsecure/pgsecure/secrets"
	_ "github.com/pgsecure/pgsecure/secrets/awssm" // awssm:// and rdsiam:// for --credentials
	_ "github.com/pgsecure/pgsecure/secrets/vault" // vault:// for --credentials
	"github.com/pgsecure/pgsecure/verify"
)

type checkOptions struct {
	dsn, ca, cert, key, credentials string
	systemRoots, json               bool
	timeout                         time.Duration
	pins                            listFlag
}

func runCheck(args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	var o checkOptions
	fs := flag.NewFlagSet("pgsecure check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ca, "ca", "", "PEM `FILE` of the CA that issued the server certificate (sslrootcert)")
	fs.BoolVar(&o.systemRoots, "system-roots", false, "trust the system CA store instead (publicly-issued server certificates only)")
	fs.StringVar(&o.cert, "cert", "", "client certificate `FILE` (with --key)")
	fs.StringVar(&o.key, "key", "", "client private key `FILE` (with --cert)")
	fs.Var(&o.pins, "pin", "also require this SPKI pin (base64 SHA-256) in the server's chain; repeatable")
	fs.StringVar(&o.credentials, "credentials", "", "secret source `URI` for user and password (env:, file:/run/secrets/db, vault://..., awssm://...)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: pgsecure check [flags] [DSN]\n\nDSN is a libpq connection string or URL; missing keys come from the PG* environment variables.\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		return exitUsage // the flag package printed the problem and the usage
	case len(pos) > 1:
		return usageError(stderr, "more than one DSN given (%d arguments); quote the DSN if it contains spaces", len(pos))
	case (o.cert == "") != (o.key == ""):
		return usageError(stderr, "--cert and --key go together")
	case o.timeout <= 0:
		return usageError(stderr, "--timeout must be positive")
	}
	if len(pos) == 1 {
		o.dsn = pos[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	sc := &scrubber{}
	r := inspect(ctx, o, env, sc)
	var out strings.Builder
	if o.json {
		err = renderJSON(&out, r)
	} else {
		err = renderTable(&out, r)
	}
	if err != nil {
		fmt.Fprintln(stderr, "pgsecure check: cannot print the report:", err)
		return exitUsage
	}
	fmt.Fprint(stdout, sc.scrub(out.String()))
	if r.Error != "" {
		fmt.Fprintln(stderr, sc.scrub("pgsecure check: "+r.Error))
	}
	return r.ExitCode
}

func usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "pgsecure check: "+format+"\n", args...)
	return exitUsage
}

// inspect connects through the pgsecure builder exactly as an application
// would, then probes the server's plaintext policy, and reports.
func inspect(ctx context.Context, o checkOptions, env func(string) (string, bool), sc *scrubber) *checkReport {
	r := &checkReport{Findings: []finding{}}
	fail := func(err error) *checkReport {
		r.Error, r.ExitCode = err.Error(), exitCode(err)
		r.judge()
		return r
	}
	rd := resolveDSN(o.dsn, env)
	sc.add(dsnSecrets(o.dsn)...)
	sc.add(dsnSecrets(rd.dsn)...)
	if pw, ok := env("PGPASSWORD"); ok {
		sc.add(pw)
	}
	warnings := &warnCollector{}
	b := pgsecure.NewBuilder(rd.dsn).Logger(slog.New(warnings))
	if o.ca != "" {
		b.RootCAFile(o.ca)
	}
	if o.systemRoots {
		b.SystemRoots()
	}
	clientCertificate(b, o.cert, o.key, o.pins)
	if o.credentials != "" {
		src, err := secrets.Open(ctx, o.credentials)
		if err != nil {
			return fail(fmt.Errorf("--credentials: %w", err))
		}
		if c, ok := src.(secrets.Closer); ok {
			defer c.Close(context.WithoutCancel(ctx))
		}
		b.Credentials(&recordingSource{Source: src, sc: sc})
	}
	b.BeforeConnect(func(_ context.Context, cc *pgx.ConnConfig) error {
		if cc.Password == "" {
			cc.Password, _ = env("PGPASSWORD")
		}
		sc.add(cc.Password)
		return nil
	})
	cfg, err := b.Config(ctx)
	if err != nil {
		rd.attribute(err)
		return fail(err)
	}
	sc.add(cfg.ConnConfig.Password)
	r.User, r.Database = cfg.ConnConfig.User, cfg.ConnConfig.Database
	probeAddr := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))

	obs := &pgwire.Observer{}
	connErr := connect(ctx, cfg, obs, r)
	if connErr == nil {
		probeAddr = r.Addr
	}
	r.Probe = probe(ctx, probeAddr, r.User, r.Database)
	for _, w := range warnings.messages() {
		r.add(sevWarning, "%s", w)
	}
	if connErr != nil {
		if why := x509check.ExplainHandshakeFailure(ctx, probeAddr, connErr); why != "" {
			connErr = fmt.Errorf("%w; %s", connErr, why) // an RSA-PSS server key: a Go limit
		}
		return fail(connErr)
	}
	r.judge()
	if !r.Secure {
		r.ExitCode = exitInsecure
	}
	return r
}

// connect opens one connection with cfg, the way pgxpool does (BeforeConnect
// on a copy of the ConnConfig, pgx.ConnectConfig, AfterConnect), and records
// what pgsecure verified and what the observer saw of the authentication.
//
// The observer is installed after BeforeConnect, outermost, so that it sees
// the server's authentication request even when pgsecure's policy refuses it
// (pgsecure re-wraps frontends set before BeforeConnect inside its own).
func connect(ctx context.Context, cfg *pgxpool.Config, obs *pgwire.Observer, r *checkReport) error {
	cc := cfg.ConnConfig.Copy()
	if cfg.BeforeConnect != nil {
		if err := cfg.BeforeConnect(ctx, cc); err != nil {
			return err
		}
	}
	cc.BuildFrontend = obs.BuildFrontend(cc.BuildFrontend)
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		if a, ok := obs.Last(); ok {
			r.setAuth(a)
			r.User, r.Database = orElse(a.User, r.User), orElse(a.Database, r.Database)
		}
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if cfg.AfterConnect != nil {
		if err := cfg.AfterConnect(ctx, conn); err != nil {
			return err
		}
	}
	pgc := conn.PgConn()
	v, ok := verify.ReportOf(pgc)
	if !ok {
		return errors.New("pgsecure: the connection carries no verification report")
	}
	r.setVerified(v, time.Now())
	a, _ := obs.Auth(pgc.PID())
	r.setAuth(a)
	r.User, r.Database = conn.Config().User, conn.Config().Database
	return nil
}

// probe runs the plaintext probe with at most 5 s of the remaining time.
func probe(ctx context.Context, addr, user, database string) *probeInfo {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := pgwire.ProbePlaintext(ctx, addr, user, database)
	if err != nil {
		return &probeInfo{Result: "failed", Message: err.Error()}
	}
	p := &probeInfo{Result: string(res.Verdict), SQLState: res.SQLState, Message: res.Message}
	if res.Verdict == pgwire.Accepted {
		code := int(res.AuthCode)
		p.AuthCode = &code
	}
	return p
}

// exitCode maps an error to 2 for configuration mistakes, 1 otherwise.
func exitCode(err error) int {
	if errors.Is(err, pgsecure.ErrInsecureConfig) || errors.Is(err, secrets.ErrInvalid) || errors.Is(err, secrets.ErrUnknownScheme) {
		return exitUsage
	}
	return exitInsecure
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
