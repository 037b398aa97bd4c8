package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Shutdown signals understood by the postmaster.
const (
	sigImmediate = syscall.SIGQUIT // what `pg_ctl stop -m immediate` sends
	sigFast      = syscall.SIGINT  // what `pg_ctl stop -m fast` sends
)

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
	pollInterval = 25 * time.Millisecond
)

var errAddrInUse = errors.New("port already in use")

// process is a running postmaster started by launch.
type process struct {
	pid  int
	done chan struct{} // closed once the postmaster has exited and been reaped
}

// launch starts the postmaster and waits until it accepts admin connections.
func (p *Postgres) launch() (*process, error) {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot open the server log: %w", ErrPGStart, err)
	}
	defer logFile.Close()
	cmd := p.user.command(filepath.Join(p.bin, "postgres"), "-D", p.DataDir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: cannot run postgres: %w", ErrPGStart, err)
	}
	proc := &process{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // the exit status of a stopped server carries no information
		close(proc.done)
	}()
	if err := p.waitReady(proc); err != nil {
		stopErr := proc.stop(sigImmediate)
		log := readTail(p.logPath)
		if strings.Contains(log, "Address already in use") {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return nil, errors.Join(fmt.Errorf("%w: %w; server log:\n%s", ErrPGStart, err, log), stopErr)
	}
	return proc, nil
}

// waitReady polls an admin connection until it succeeds, the postmaster exits,
// or readyTimeout passes.
func (p *Postgres) waitReady(proc *process) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-proc.done:
			return errors.New("postgres exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", readyTimeout, lastErr)
		default:
		}
		conn, err := p.Admin(ctx)
		if err == nil {
			return conn.Close(ctx)
		}
		lastErr = err
		select {
		case <-proc.done:
		case <-ctx.Done():
		case <-time.After(pollInterval):
		}
	}
}

// stop sends sig to the postmaster, waits for it to exit, then makes sure no
// process of its group is left (SIGKILL after stopTimeout). A nil process is
// already stopped.
func (proc *process) stop(sig syscall.Signal) error {
	if proc == nil {
		return nil
	}
	_ = syscall.Kill(proc.pid, sig) // ESRCH: already gone, which is the goal
	var err error
	select {
	case <-proc.done:
	case <-time.After(stopTimeout):
		err = fmt.Errorf("pgsecure/testutil: postgres (pid %d) did not stop within %s; killed it", proc.pid, stopTimeout)
		_ = syscall.Kill(-proc.pid, syscall.SIGKILL)
		<-proc.done
	}
	if syscall.Kill(-proc.pid, 0) == nil { // a backend outlived its postmaster
		_ = syscall.Kill(-proc.pid, syscall.SIGKILL)
	}
	return err
}

// Admin connects as the superuser over the unix socket (no TLS, trust). It is
// the harness's own path; tests of pgsecure must connect over TCP with URL.
func (p *Postgres) Admin(ctx context.Context) (*pgx.Conn, error) {
	dsn := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=5",
		p.SocketDir, p.Port)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("pgsecure/testutil: admin connection over %s: %w", p.SocketDir, err)
	}
	return conn, nil
}
