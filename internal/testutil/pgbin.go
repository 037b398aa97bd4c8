package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrPGUnavailable is wrapped by Start's error when this machine cannot run a
// PostgreSQL server at all (binaries or the postgres OS user are missing).
// RequirePG skips on it outside CI.
var ErrPGUnavailable = errors.New("pgsecure/testutil: PostgreSQL server is not available")

// ErrPGStart is wrapped by Start's error when a server was found but failed to
// initialise, start or become ready; the error includes the server log.
var ErrPGStart = errors.New("pgsecure/testutil: PostgreSQL server failed")

// debianBinDir is where Debian and Ubuntu install the PostgreSQL 15 server.
const debianBinDir = "/usr/lib/postgresql/15/bin"

// binDir returns the directory holding initdb and postgres.
func binDir() (string, error) {
	var candidates []string
	if d := os.Getenv("PGSECURE_PG_BINDIR"); d != "" {
		candidates = append(candidates, d)
	}
	candidates = append(candidates, debianBinDir)
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	for _, d := range candidates {
		if isExecutable(filepath.Join(d, "postgres")) && isExecutable(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: initdb and postgres not found in $PGSECURE_PG_BINDIR, %s, `pg_config --bindir` or PATH; "+
		"install with: apt-get install -y postgresql", ErrPGUnavailable, debianBinDir)
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// osUser is the account the server runs as: nil credential means "the current
// user" (initdb refuses to run as root, so root switches to "postgres").
type osUser struct {
	cred *syscall.Credential
}

func serverUser() (osUser, error) {
	if os.Geteuid() != 0 {
		return osUser{}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return osUser{}, fmt.Errorf("%w: running as root, and initdb refuses root, but there is no \"postgres\" OS user "+
			"(install with: apt-get install -y postgresql, or run the tests as a non-root user): %w", ErrPGUnavailable, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return osUser{}, fmt.Errorf("%w: unusable uid/gid for OS user postgres: %w", ErrPGUnavailable, err)
	}
	return osUser{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}}, nil
}

// chown gives path to the server user (no-op when not switching users).
func (u osUser) chown(path string) error {
	if u.cred == nil {
		return nil
	}
	return os.Lchown(path, int(u.cred.Uid), int(u.cred.Gid))
}

// command prepares name with args to run as the server user in its own process
// group; if the test process dies, the kernel sends the server SIGQUIT
// (PostgreSQL's immediate shutdown), so no postmaster outlives the tests.
func (u osUser) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGQUIT, Credential: u.cred}
	return cmd
}

// writeOwned writes data to path with mode via a temporary file and rename, and
// gives it to the server user, so the server never reads a half-written file.
func (u osUser) writeOwned(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := errors.Join(os.Chmod(tmp, mode), u.chown(tmp)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
