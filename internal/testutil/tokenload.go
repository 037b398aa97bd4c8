package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ChurnConnections makes a pool keep opening connections (at most 4, each
// living 1.5 s ± 0.5 s), so that every new login token gets used.
func ChurnConnections(c *pgxpool.Config) {
	c.MaxConns = 4
	c.MaxConnLifetime = 1500 * time.Millisecond
	c.MaxConnLifetimeJitter = 500 * time.Millisecond
}

// AssertTokensRotate is the check shared by the login-token sources' tests
// (RDS, Cloud SQL, Entra ID): it holds one connection of pool, opened with
// the first token, runs queries on pool (configured with ChurnConnections)
// for d, and then requires that no query failed, that every login pam saw
// succeeded, that at least two tokens were used (the token was replaced
// before it expired), and that the held session still answers after its
// token expired.
func AssertTokensRotate(ctx context.Context, t testing.TB, pool *pgxpool.Pool, pam *PAM, d time.Duration) {
	t.Helper()
	long, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquiring the connection to hold: %v", err)
	}
	defer long.Release()

	ok, failed := QueryLoad(ctx, t, pool, 3, d)
	if failed != 0 || ok == 0 {
		t.Errorf("under load: %d queries failed, %d succeeded; want none failed", failed, ok)
	}
	tokens := map[string]bool{}
	for _, a := range pam.Attempts() {
		if a.Err != nil {
			t.Errorf("a login used a token that was not valid: %v", a.Err)
		}
		tokens[a.Password] = true
	}
	if len(tokens) < 2 {
		t.Errorf("%d token(s) used; the token was not replaced before it expired", len(tokens))
	}
	var one int
	if err := long.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Errorf("a session did not outlive the token it was opened with: %v", err)
	}
}
