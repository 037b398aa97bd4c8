// Command modproxy publishes a module directory as one version in a
// file-system module proxy (the layout GOPROXY=file://DIR reads), so that a
// module can be built against this checkout exactly as a consumer builds it
// against a released version: through the module proxy protocol, with no
// replace directive and no workspace.
//
//	git ls-files -co --exclude-standard | modproxy -dir . -version v0.1.0 -proxy /tmp/proxy
//
// The files to publish are read from standard input, one path a line,
// relative to -dir; files inside a nested module (a directory below -dir
// holding its own go.mod) are left out, as the go command leaves them out of
// a module zip.
package main

import (
	"archive/zip"
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	dir := flag.String("dir", ".", "the module's root directory (holds its go.mod)")
	version := flag.String("version", "", "the version to publish, e.g. v0.1.0")
	proxy := flag.String("proxy", "", "the proxy directory to write into")
	flag.Parse()
	if *version == "" || *proxy == "" {
		fmt.Fprintln(os.Stderr, "modproxy: -version and -proxy are required")
		os.Exit(2)
	}
	files, err := readList(os.Stdin)
	if err == nil {
		err = publish(*dir, *version, *proxy, files)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func readList(r io.Reader) ([]string, error) {
	var files []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.TrimSpace(sc.Text()); f != "" {
			files = append(files, filepath.ToSlash(f))
		}
	}
	return files, sc.Err()
}

func publish(dir, version, proxy string, files []string) error {
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	module := modulePath(gomod)
	if module == "" {
		return errors.New("no module line in " + filepath.Join(dir, "go.mod"))
	}
	files = ownFiles(files)
	at := filepath.Join(proxy, filepath.FromSlash(escape(module)), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	if err := writeZip(filepath.Join(at, version+".zip"), dir, module+"@"+version+"/", files); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(at, version+".mod"), gomod, 0o644); err != nil {
		return err
	}
	info, _ := json.Marshal(struct{ Version, Time string }{version, time.Now().UTC().Format(time.RFC3339)})
	if err := os.WriteFile(filepath.Join(at, version+".info"), info, 0o644); err != nil {
		return err
	}
	return addToList(filepath.Join(at, "list"), version)
}

// ownFiles drops the files of nested modules.
func ownFiles(files []string) []string {
	var nested []string
	for _, f := range files {
		if path.Base(f) == "go.mod" && path.Dir(f) != "." {
			nested = append(nested, path.Dir(f)+"/")
		}
	}
	var own []string
	for _, f := range files {
		inNested := false
		for _, n := range nested {
			inNested = inNested || strings.HasPrefix(f, n)
		}
		if !inNested {
			own = append(own, f)
		}
	}
	sort.Strings(own)
	return own
}

func writeZip(name, dir, prefix string, files []string) error {
	out, err := os.Create(name)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(out)
	for _, f := range files {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f)))
		if errors.Is(err, os.ErrNotExist) {
			continue // listed by git but deleted in the work tree
		}
		if err != nil || !fi.Mode().IsRegular() {
			if err == nil {
				continue // symbolic links and the like are not part of a module zip
			}
			return err
		}
		w, err := zw.Create(prefix + f)
		if err != nil {
			return err
		}
		in, err := os.Open(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return err
		}
		_, err = io.Copy(w, in)
		in.Close()
		if err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return out.Close()
}

func addToList(name, version string) error {
	old, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, v := range strings.Fields(string(old)) {
		if v == version {
			return nil
		}
	}
	return os.WriteFile(name, append(old, []byte(version+"\n")...), 0o644)
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// escape applies the module proxy's case encoding: each upper-case letter
// becomes '!' and its lower-case form.
func escape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
