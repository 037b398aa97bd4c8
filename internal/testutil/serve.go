package testutil

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TrySetServerCert is SetServerCert for certificates the server may be
// unable to load or serve: it writes them, reloads, and waits until probe
// (which returns the DER of the leaf the server presents at addr) sees
// certPEM's first certificate. When that does not happen within timeout it
// returns an error quoting the server log's last lines: PostgreSQL keeps
// its previous certificate when the new one cannot be loaded.
func (p *Postgres) TrySetServerCert(t testing.TB, certPEM, keyPEM []byte, timeout time.Duration,
	probe func(ctx context.Context, addr string) ([]byte, error)) error {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("pgsecure/testutil: TrySetServerCert: certPEM holds no PEM certificate")
	}
	var logFrom int64 // only what the server logs from now on explains this reload
	if st, err := os.Stat(p.logPath); err == nil {
		logFrom = st.Size()
	}
	if err := p.writeServerCert(certPEM, keyPEM); err != nil {
		t.Fatalf("pgsecure/testutil: TrySetServerCert: %v", err)
	}
	p.reload(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		probeCtx, probeCancel := context.WithTimeout(ctx, 2*time.Second)
		leaf, err := probe(probeCtx, p.Addr())
		probeCancel()
		if err == nil && bytes.Equal(leaf, block.Bytes) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the server did not serve the new certificate within %s (last probe error: %v); server log: %s",
				timeout, err, reloadProblems(p.logPath, logFrom))
		case <-time.After(pollInterval):
		}
	}
}

// reloadProblems returns the lines the server logged from offset on about a
// failed SSL reload ("could not load ...", "SSL configuration was not
// reloaded"), or its last lines when there are none.
func reloadProblems(logPath string, offset int64) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	if offset <= int64(len(b)) {
		b = b[offset:]
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var found []string
	for _, l := range lines {
		if strings.Contains(l, "could not load") || strings.Contains(l, "does not match") ||
			strings.Contains(l, "was not reloaded") || strings.Contains(l, "private key") {
			found = append(found, l)
		}
	}
	if len(found) == 0 {
		found = lines
	}
	if len(found) > 3 {
		found = found[len(found)-3:]
	}
	return strings.Join(found, " | ")
}
