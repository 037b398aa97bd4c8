package proof

import (
	"testing"

	"github.com/pgsecure/pgsecure/internal/testutil"
)

// faultProxy is the fault-injecting relay of package testutil (a test
// double for a bad network; see testutil.FaultProxy).
type faultProxy = testutil.FaultProxy

func newFaultProxy(t *testing.T, upstream string) *faultProxy {
	return testutil.NewFaultProxy(t, upstream)
}
