package proof

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// proofParallel is how many of this package's parallel tests run at once
// when -test.parallel is not given. They spend most of their time waiting
// (on servers, replication, backoff, soaks that pace themselves), so the
// default of GOMAXPROCS, 2 on a small CI machine, leaves the CPU idle.
const proofParallel = 4

// TestMain raises the default of -test.parallel to proofParallel; an
// explicit -test.parallel (or -parallel to go test) is kept as given.
func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		if err := flag.Set("test.parallel", strconv.Itoa(max(proofParallel, runtime.GOMAXPROCS(0)))); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
