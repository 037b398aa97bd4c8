package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// initdb takes about a second of CPU, most of it writing the same catalog
// files for every server. The harness runs it once per PostgreSQL
// installation and server user, into a template data directory kept in the
// scratch directory (like a build cache; delete it at will), and gives
// each server a copy. A copy of a cluster that was never started is what
// initdb would have written, system identifier included; no test compares
// the identifiers of two unrelated servers.

var templates sync.Map // template path -> *templateOnce

type templateOnce struct {
	once sync.Once
	err  error
}

// initArgs are the initdb arguments of every server (and of the template).
var initArgs = []string{"-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"}

// templateDir returns the template data directory for bin and u, making it
// if no process has yet. Processes racing to make it each initdb into a
// directory of their own and rename it into place; the first rename wins.
func templateDir(bin string, u osUser) (string, error) {
	st, err := os.Stat(filepath.Join(bin, "postgres"))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrPGStart, err)
	}
	uid := os.Geteuid()
	if u.cred != nil {
		uid = int(u.cred.Uid)
	}
	key := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d\x00%q", bin, st.Size(), st.ModTime().UnixNano(), uid, initArgs))
	dir := filepath.Join(scratchDir(), "pgsecure-initdb-"+hex.EncodeToString(key[:8])+"-"+strconv.Itoa(uid))
	v, _ := templates.LoadOrStore(dir, &templateOnce{})
	o := v.(*templateOnce)
	o.once.Do(func() { o.err = makeTemplate(dir, bin, u) })
	return filepath.Join(dir, "data"), o.err
}

func makeTemplate(dir, bin string, u osUser) error {
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(scratchDir(), "pgsecure-initdb-new-")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPGStart, err)
	}
	if err := u.chown(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("%w: %w", ErrPGStart, err)
	}
	cmd := u.command(filepath.Join(bin, "initdb"), append([]string{"-D", filepath.Join(tmp, "data")}, initArgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("%w: initdb: %w\n%s", ErrPGStart, err, tail(out))
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // readable by the server user, whoever owns it
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("%w: %w", ErrPGStart, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		if _, statErr := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); statErr == nil {
			return nil // another process made it first
		}
		return fmt.Errorf("%w: %w", ErrPGStart, err)
	}
	return nil
}

// copyTemplate fills p.DataDir with a copy of the template, as the server
// user (cp -a keeps the 0700 mode PostgreSQL insists on).
func (p *Postgres) copyTemplate() error {
	src, err := templateDir(p.bin, p.user)
	if err != nil {
		return err
	}
	if out, err := p.user.command("cp", "-a", src, p.DataDir).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: copying the initdb template %s: %w\n%s", ErrPGStart, src, err, tail(out))
	}
	return nil
}

// scratchDir is where servers keep their files: /dev/shm when it is a
// writable directory (a RAM file system on Linux: copying the template and
// writing a cluster cost a tenth of what they cost on disk), otherwise the
// temporary directory. $PGSECURE_TEST_TMPDIR, when set, wins.
func scratchDir() string {
	if d := os.Getenv("PGSECURE_TEST_TMPDIR"); d != "" {
		return d
	}
	scratchOnce.Do(func() {
		scratch = os.TempDir()
		if f, err := os.CreateTemp("/dev/shm", "pgsecure-probe-"); err == nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			scratch = "/dev/shm"
		}
	})
	return scratch
}

var (
	scratchOnce sync.Once
	scratch     string
)
