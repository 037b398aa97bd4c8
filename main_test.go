package pgsecure_test

import (
	"os"
	"testing"

	"github.com/pgsecure/pgsecure/internal/testutil"
)

// TestMain runs four parallel tests at once unless -parallel says
// otherwise: most tests here start a server and wait on logins, timeouts
// and pools far more than they compute (see testutil.RunParallel).
func TestMain(m *testing.M) { os.Exit(testutil.RunParallel(m, 4)) }
