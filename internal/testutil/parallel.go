package testutil

import (
	"flag"
	"runtime"
	"strconv"
	"testing"
)

// RunParallel runs m (call it from TestMain and exit with its result) with
// -test.parallel defaulting to n, or GOMAXPROCS when that is larger. It is
// for packages whose parallel tests mostly wait (on servers, replication,
// backoff, soaks that pace themselves): the usual default of GOMAXPROCS, 2
// on a small CI machine, would leave the CPU idle. A -test.parallel given
// on the command line (go test -parallel) is kept as given.
func RunParallel(m *testing.M, n int) int {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		if err := flag.Set("test.parallel", strconv.Itoa(max(n, runtime.GOMAXPROCS(0)))); err != nil {
			panic("pgsecure/testutil: RunParallel: " + err.Error())
		}
	}
	return m.Run()
}
