package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// printVersion prints the module version and how the binary was built, from
// the build information the Go toolchain embeds: `go install
// .../cmd/pgsecure@v1.2.3` gives v1.2.3, a build from a checkout its VCS
// revision.
func printVersion(w io.Writer) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintf(w, "pgsecure (no build information)\ngo      %s\n", runtime.Version())
		return
	}
	version := cmp.Or(bi.Main.Version, "(devel)")
	fmt.Fprintf(w, "pgsecure %s\n", version)
	fmt.Fprintf(w, "module  %s %s\n", bi.Main.Path, version)
	fmt.Fprintf(w, "command %s\n", bi.Path)
	fmt.Fprintf(w, "go      %s %s/%s\n", cmp.Or(bi.GoVersion, runtime.Version()), runtime.GOOS, runtime.GOARCH)
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	if rev := vcs["vcs.revision"]; rev != "" {
		modified := ""
		if vcs["vcs.modified"] == "true" {
			modified = " (modified)"
		}
		fmt.Fprintf(w, "vcs     %s %s %s%s\n", vcs["vcs"], rev, vcs["vcs.time"], modified)
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/jackc/pgx/v5" {
			fmt.Fprintf(w, "pgx     %s\n", d.Version)
		}
	}
}
