package testutil

import "testing"

// SkipIfShort skips a soak or load test under go test -short, saying what
// is skipped. -short is the quick local run; CI and scripts/test.sh run the
// full suite, which does not pass -short.
func SkipIfShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: skips %s (the full suite runs it)", what)
	}
}
