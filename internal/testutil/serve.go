package testutil

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
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
				timeout, err, lastLines(readTail(p.logPath), 3))
		case <-time.After(pollInterval):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
