package proof

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsecure/pgsecure"
	"github.com/pgsecure/pgsecure/internal/x509check"
	"github.com/stretchr/testify/require"
)

// Helpers of the parity tests written case by case (parity_openssl_test.go);
// the generated matrix has its own (parity_matrix_test.go).

// runPsql connects with psql and reports whether SELECT 1 succeeded, with
// psql's output. The password travels only in PGPASSWORD; HOME is empty so
// no ~/.postgresql file or ~/.pgpass takes part.
func runPsql(t *testing.T, psql, caFile, host string, port int) (bool, string) {
	t.Helper()
	conn := "host=" + host + " port=" + strconv.Itoa(port) + " user=" + appUser + " dbname=postgres" +
		" sslmode=verify-full sslrootcert=" + caFile
	if _, isIP := x509check.HostAddr(host); !isIP {
		conn += " hostaddr=127.0.0.1" // the name is only checked, never resolved
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, "-w", "-X", "-A", "-t", "-c", "SELECT 1", conn)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C", "PGPASSWORD=" + appPassword, "PGCONNECT_TIMEOUT=10"}
	out, err := cmd.CombinedOutput()
	require.NotContains(t, cmd.Args, appPassword)
	return err == nil && strings.TrimSpace(string(out)) == "1", string(out)
}

// connectPgsecure opens one pgsecure connection to host, which resolves to
// 127.0.0.1 whatever name it is.
func connectPgsecure(t *testing.T, caFile, host string, port int) error {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	cfg, err := pgsecure.NewBuilder(dsn(host, port, "")).RootCAFile(caFile).Logger(quiet).Config(ctx)
	if err != nil {
		return err
	}
	if _, isIP := x509check.HostAddr(host); !isIP {
		// A name resolves to 127.0.0.1; an address (127.1, 0x7f.0.0.1)
		// goes through pgsecure's own resolution, as libpq dials it.
		cfg.ConnConfig.LookupFunc = func(context.Context, string) ([]string, error) { return []string{"127.0.0.1"}, nil }
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	return pool.Ping(ctx)
}
