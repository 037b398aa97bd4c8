package proof

import (
	"os"
	"testing"

	"github.com/pgsecure/pgsecure/internal/testutil"
)

// TestMain runs four parallel tests at once unless -parallel says
// otherwise: this package's tests mostly wait on servers, replication,
// backoff and self-pacing soaks (see testutil.RunParallel).
func TestMain(m *testing.M) { os.Exit(testutil.RunParallel(m, 4)) }
