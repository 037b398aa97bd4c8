package proof

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/testutil"
	"github.com/pgsecure/pgsecure/internal/x509check"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parityVerdict is what one client made of one row.
type parityVerdict struct {
	OK bool `json:"ok"`
	// Msg is psql's output, or pgsecure's error.
	Msg string `json:"msg"`
	// For pgsecure's refusals: whether the error wraps ErrUntrustedServer
	// and ErrNotEncrypted, and the *CertificateError's problem and fix.
	Untrusted    bool   `json:"untrusted"`
	NotEncrypted bool   `json:"not_encrypted"`
	Problem      string `json:"problem"`
	Fix          string `json:"fix"`
}

type parityResult struct {
	psql, pgsecure parityVerdict
	skip           string // why the row was not run (the server could not serve its certificate)
}

// parityWorkers bounds the rows run at once (each runs psql, a process, and
// pgsecure in this process).
const parityWorkers = 6

// parityServers is how many servers the matrix's groups of rows are spread
// over (each group needs its own server certificate loaded).
const parityServers = 3

// TestLibpqParityMatrix runs the generated matrix (parity_matrix_rows_test.go):
// for each row, psql 15 (libpq, sslmode=verify-full) and pgsecure connect
// to the same real PostgreSQL 15 server, which reloads its certificate for
// each group of rows, with the same sslrootcert and host. pgsecure must
// accept exactly when psql does, except on rows README's Limits section
// names; each refusal must wrap ErrUntrustedServer and say what is wrong
// and how to fix it, without a secret. The table (go test -run
// TestLibpqParityMatrix -v) shows every row; -short runs a subset.
func TestLibpqParityMatrix(t *testing.T) {
	t.Parallel()
	psql := testutil.RequireTool(t, "psql", "postgresql-client")
	started := time.Now()
	m := newMPKI(t)
	rows := parityMatrixRows(t, m)
	if testing.Short() {
		rows = shortParityRows(rows)
	}
	generated := time.Since(started)

	// Rows that share a server certificate form a group; most groups hold
	// one or two rows, so one server reloading for each group in turn
	// would leave the workers idle. parityServers servers each take every
	// parityServers-th group, one group at a time; the rows of all of them
	// share the parityWorkers slots.
	type group struct{ from, to int }
	var groups []group
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].srv == rows[i].srv {
			j++
		}
		groups = append(groups, group{i, j})
		i = j
	}
	first := m.leaf(localLeaf, m.root)
	servers := make([]*testutil.Postgres, min(parityServers, len(groups)))
	for s := range servers {
		servers[s] = testutil.StartPostgres(t, testutil.PGOptions{
			ServerCertPEM: first.pem, ServerKeyPEM: first.keyPEM(t),
			Conf: map[string]string{"listen_addresses": "'127.0.0.1,::1'"},
			HBA: []string{"hostssl all all 127.0.0.1/32 scram-sha-256", "hostssl all all ::1/128 scram-sha-256",
				"hostnossl all all all reject"},
		})
		servers[s].CreateRole(t, appUser, appPassword)
	}
	dir := t.TempDir()

	results := make([]parityResult, len(rows))
	reloadErrs := make([]error, len(groups))
	sem := make(chan struct{}, parityWorkers)
	var shards sync.WaitGroup
	for s, pg := range servers {
		shards.Add(1)
		go func() {
			defer shards.Done()
			for g := s; g < len(groups); g += len(servers) {
				i, j := groups[g].from, groups[g].to
				if err := pg.TrySetServerCert(t, rows[i].srv.certPEM, rows[i].srv.keyPEM, 15*time.Second, probeLeaf); err != nil {
					reloadErrs[g] = err
					for k := i; k < j; k++ {
						results[k].skip = "server cannot serve this certificate: " + err.Error()
					}
					continue
				}
				var wg sync.WaitGroup
				for k := i; k < j; k++ {
					wg.Add(1)
					sem <- struct{}{}
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						results[k] = runParityRow(psql, pg.Port, dir, k, rows[k])
					}()
				}
				wg.Wait()
			}
		}()
	}
	shards.Wait()
	for g, err := range reloadErrs {
		if err != nil {
			// Only a certificate PostgreSQL refused to load is a row about
			// the server; anything else is a broken harness.
			require.Contains(t, err.Error(), "SSL configuration was not reloaded", "row %d (%s)", groups[g].from, rows[groups[g].from])
		}
	}
	reloads := len(groups)

	printParityTable(t, rows, results)
	t.Logf("%d rows, %d server certificates, generated in %s, run in %s", len(rows), reloads,
		generated.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	for i, r := range rows {
		checkParityRow(t, i, r, results[i])
	}
}

// shortParityRows keeps, under -short, the rows of every fourth server
// certificate (a reload costs more than a row), so each section keeps some.
func shortParityRows(rows []parityRow) []parityRow {
	var out []parityRow
	group := -1
	for i, r := range rows {
		if i == 0 || rows[i-1].srv != r.srv {
			group++
		}
		if group%4 == 0 {
			out = append(out, r)
		}
	}
	return out
}

// probeLeaf returns the DER of the leaf the server presents, with Go's TLS
// client or, for keys Go cannot negotiate (RSA-PSS), the TLS 1.2 probe.
func probeLeaf(ctx context.Context, addr string) ([]byte, error) {
	chain, err := testutil.ServerCertificates(ctx, addr)
	if err != nil {
		chain, err = x509check.ProbeCertificate(ctx, addr)
	}
	if err != nil {
		return nil, err
	}
	return chain[0].Raw, nil
}

// checkParityRow asserts one row's agreement and, for a refusal, item 5 of
// the issue: the error wraps ErrUntrustedServer, has a problem and a fix,
// and holds no secret.
func checkParityRow(t *testing.T, i int, r parityRow, res parityResult) {
	t.Helper()
	if res.skip != "" {
		t.Logf("row %d skipped (%s): %s", i, r, res.skip)
		return
	}
	where := fmt.Sprintf("row %d (%s)", i, r)
	if !res.psql.OK && !strings.Contains(res.psql.Msg, "SSL") && !strings.Contains(res.psql.Msg, "certificate") {
		t.Errorf("%s: psql failed for a reason other than TLS, the row proves nothing: %s", where, res.psql.Msg)
		return
	}
	assert.NotContains(t, res.pgsecure.Msg, appPassword, where)
	assert.NotContains(t, res.pgsecure.Msg, "PRIVATE KEY", where)
	if r.limit != "" {
		if res.psql.OK != res.pgsecure.OK {
			assert.True(t, res.pgsecure.NotEncrypted, "%s: a difference README's Limits lists (%s) must still be refused with ErrNotEncrypted: %s",
				where, r.limit, res.pgsecure.Msg)
		}
		return
	}
	if res.psql.OK != res.pgsecure.OK {
		t.Errorf("%s: psql ok=%v, pgsecure ok=%v\n  psql: %s\n  pgsecure: %s", where, res.psql.OK, res.pgsecure.OK,
			strings.TrimSpace(res.psql.Msg), res.pgsecure.Msg)
		return
	}
	if !res.pgsecure.OK {
		assert.True(t, res.pgsecure.Untrusted, "%s: the refusal must wrap ErrUntrustedServer: %s", where, res.pgsecure.Msg)
		assert.NotEmpty(t, res.pgsecure.Problem, "%s: the refusal must say what is wrong: %s", where, res.pgsecure.Msg)
		assert.NotEmpty(t, res.pgsecure.Fix, "%s: the refusal must say how to fix it: %s", where, res.pgsecure.Msg)
	}
}

func printParityTable(t *testing.T, rows []parityRow, results []parityResult) {
	t.Helper()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "row\tsection\tcase\tserver sends\tsslrootcert\thost\tpsql\tpgsecure\tpgsecure's error")
	verdict := func(v parityVerdict) string {
		if v.OK {
			return "accept"
		}
		return "refuse"
	}
	for i, r := range rows {
		res := results[i]
		ps, pg, why := verdict(res.psql), verdict(res.pgsecure), res.pgsecure.Problem
		if why == "" && !res.pgsecure.OK {
			why = res.pgsecure.Msg
		}
		if res.skip != "" {
			ps, pg, why = "-", "-", "skipped: "+res.skip
		} else if r.limit != "" && res.psql.OK != res.pgsecure.OK {
			pg += " (Limits: " + r.limit + ")"
		}
		if len(why) > 150 {
			why = why[:150] + "..."
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i, r.section, r.what, r.srv.name, r.roots.name, r.host, ps, pg, why)
	}
	require.NoError(t, w.Flush())
	t.Log("\n" + b.String())
}

// runParityRow runs psql and pgsecure for one row.
func runParityRow(psql string, port int, dir string, i int, r parityRow) parityResult {
	rootFile := filepath.Join(dir, "roots-"+strconv.Itoa(i)+".crt")
	if err := os.WriteFile(rootFile, r.roots.pem, 0o600); err != nil {
		return parityResult{skip: err.Error()}
	}
	keywords := map[string]string{
		"host": r.host, "port": strconv.Itoa(port), "user": appUser, "dbname": "postgres",
		"sslmode": "verify-full", "sslrootcert": rootFile, "connect_timeout": "10",
	}
	for k, v := range r.params {
		keywords[k] = v
	}
	var res parityResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		res.psql = psqlVerdict(psql, keywords)
	}()
	pgKeywords := maps(keywords)
	if r.roots.system {
		pgKeywords["sslrootcert"] = "system"
		res.pgsecure = pgsecureInChild(pgKeywords, rootFile, dir)
	} else {
		res.pgsecure = pgsecureVerdict(pgKeywords)
	}
	wg.Wait()
	return res
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// conninfo writes libpq keyword/value pairs, quoted, in a stable order.
func conninfo(kw map[string]string) string {
	keys := make([]string, 0, len(kw))
	for k := range kw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(kw[k])
		parts = append(parts, k+"='"+v+"'")
	}
	return strings.Join(parts, " ")
}

// psqlVerdict runs SELECT 1 through psql. A host that is not an address
// gets hostaddr=127.0.0.1: libpq checks the name and never resolves it. The
// password travels only in PGPASSWORD; HOME is empty, so no ~/.postgresql
// file takes part.
func psqlVerdict(psql string, kw map[string]string) parityVerdict {
	kw = maps(kw)
	if _, isIP := x509check.HostAddr(kw["host"]); !isIP {
		kw["hostaddr"] = "127.0.0.1"
	}
	home, err := os.MkdirTemp("", "pgsecure-parity-home-")
	if err != nil {
		return parityVerdict{Msg: err.Error()}
	}
	defer os.RemoveAll(home)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, "-w", "-X", "-A", "-t", "-c", "SELECT 1", conninfo(kw))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LC_ALL=C", "PGPASSWORD=" + appPassword}
	out, err := cmd.CombinedOutput()
	return parityVerdict{OK: err == nil && strings.TrimSpace(string(out)) == "1", Msg: strings.TrimSpace(string(out))}
}

// pgsecureVerdict opens one pgsecure connection with the keywords; a host
// name resolves to 127.0.0.1, an address is dialled as pgsecure reads it.
func pgsecureVerdict(kw map[string]string) parityVerdict {
	kw = maps(kw)
	kw["password"] = appPassword
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := func() error {
		cfg, err := pgsecure.NewBuilder(conninfo(kw)).Logger(quiet).Config(ctx)
		if err != nil {
			return err
		}
		if _, isIP := x509check.HostAddr(kw["host"]); !isIP {
			cfg.ConnConfig.LookupFunc = func(context.Context, string) ([]string, error) { return []string{"127.0.0.1"}, nil }
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer pool.Close()
		return pool.Ping(ctx)
	}()
	if err == nil {
		return parityVerdict{OK: true}
	}
	v := parityVerdict{Msg: err.Error(), Untrusted: errors.Is(err, pgsecure.ErrUntrustedServer), NotEncrypted: errors.Is(err, pgsecure.ErrNotEncrypted)}
	var ce *pgsecure.CertificateError
	if errors.As(err, &ce) {
		v.Problem, v.Fix = ce.Problem, ce.Fix
	}
	return v
}

// parityChildEnv carries the keywords to TestLibpqParityMatrixChild.
const parityChildEnv = "PGSECURE_PARITY_CHILD_KEYWORDS"

// pgsecureInChild runs pgsecureVerdict in a child test process whose
// SSL_CERT_FILE is certFile (and SSL_CERT_DIR empty): crypto/x509 reads the
// system roots once per process, so each "system" row needs its own.
func pgsecureInChild(kw map[string]string, certFile, dir string) parityVerdict {
	b, err := json.Marshal(kw)
	if err != nil {
		return parityVerdict{Msg: err.Error()}
	}
	empty := filepath.Join(dir, "empty-cert-dir")
	if err := os.MkdirAll(empty, 0o700); err != nil {
		return parityVerdict{Msg: err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLibpqParityMatrixChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), parityChildEnv+"="+string(b), "SSL_CERT_FILE="+certFile, "SSL_CERT_DIR="+empty)
	out, err := cmd.Output()
	if err != nil {
		return parityVerdict{Msg: fmt.Sprintf("child process: %v: %s", err, out)}
	}
	var v parityVerdict
	line := out
	if i := strings.Index(string(out), "{"); i >= 0 {
		line = out[i:]
	}
	if j := strings.Index(string(line), "\n"); j >= 0 {
		line = line[:j]
	}
	if err := json.Unmarshal(line, &v); err != nil {
		return parityVerdict{Msg: fmt.Sprintf("child process output %q: %v", out, err)}
	}
	return v
}

// TestLibpqParityMatrixChild is not a test of its own: it is the child
// process of TestLibpqParityMatrix's sslrootcert=system rows, and does
// nothing unless that test started it.
func TestLibpqParityMatrixChild(t *testing.T) {
	t.Parallel()
	raw, ok := os.LookupEnv(parityChildEnv)
	if !ok {
		t.Skip("child process of TestLibpqParityMatrix (sslrootcert=system rows)")
	}
	var kw map[string]string
	require.NoError(t, json.Unmarshal([]byte(raw), &kw))
	b, err := json.Marshal(pgsecureVerdict(kw))
	require.NoError(t, err)
	fmt.Println(string(b))
}
