package tlspolicy

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pgsecure/pgsecure/internal/files"
)

// reloading holds a value loaded from files and re-loads it when any of the
// files changes (see files.StampOf: size, modification time, or the file a
// symlink resolves to, as after a Kubernetes "..data" swap). A load that
// fails keeps the last good value and logs one warning per change, so a file
// caught mid-write or a broken renewal never breaks new connections; the next
// change is retried.
type reloading[T any] struct {
	paths  []string
	what   string // for logs, e.g. "root certificate file /etc/ssl/ca.crt"
	load   func() (T, error)
	logger func() *slog.Logger

	mu  sync.Mutex
	cur atomic.Pointer[loaded[T]]
}

type loaded[T any] struct {
	val   T
	stamp files.Stamp
}

// newReloading loads the value once; that first load must succeed.
func newReloading[T any](what string, paths []string, load func() (T, error), logger func() *slog.Logger) (*reloading[T], error) {
	r := &reloading[T]{paths: paths, what: what, load: load, logger: logger}
	stamp := files.StampOf(paths...)
	v, err := load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(&loaded[T]{val: v, stamp: stamp})
	return r, nil
}

// get returns the current value, re-loading first if a file changed.
func (r *reloading[T]) get() T {
	cur := r.cur.Load()
	now := files.StampOf(r.paths...)
	if now == cur.stamp {
		return cur.val
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur = r.cur.Load()
	if now == cur.stamp {
		return cur.val
	}
	v, err := r.load()
	if err != nil {
		// Keep serving the last good value; remember the stamps so the
		// warning is logged once per change rather than once per handshake.
		r.cur.Store(&loaded[T]{val: cur.val, stamp: now})
		r.logger().Warn("pgsecure: keeping the previous material because the changed file could not be loaded",
			slog.String("file", r.what), slog.String("error", err.Error()))
		return cur.val
	}
	r.cur.Store(&loaded[T]{val: v, stamp: now})
	r.logger().Info("pgsecure: reloaded changed file", slog.String("file", r.what))
	return v
}
