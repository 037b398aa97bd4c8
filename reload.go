package pgsecure

import (
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fileStamp is the cheap change check for a watched file.
type fileStamp struct {
	size    int64
	modTime time.Time
	missing bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{missing: true}
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime()}
}

// reloading holds a value loaded from files and re-loads it when any of the
// files changes (size or modification time). A load that fails keeps the last
// good value and logs one warning per change, so a file caught mid-write or a
// broken renewal never breaks new connections; the next change is retried.
type reloading[T any] struct {
	paths  []string
	what   string // for logs, e.g. "root certificate file /etc/ssl/ca.crt"
	load   func() (T, error)
	logger func() *slog.Logger

	mu  sync.Mutex
	cur atomic.Pointer[loaded[T]]
}

type loaded[T any] struct {
	val    T
	stamps []fileStamp
}

// newReloading loads the value once; that first load must succeed.
func newReloading[T any](what string, paths []string, load func() (T, error), logger func() *slog.Logger) (*reloading[T], error) {
	r := &reloading[T]{paths: paths, what: what, load: load, logger: logger}
	stamps := r.stamps()
	v, err := load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(&loaded[T]{val: v, stamps: stamps})
	return r, nil
}

func (r *reloading[T]) stamps() []fileStamp {
	s := make([]fileStamp, len(r.paths))
	for i, p := range r.paths {
		s[i] = stampOf(p)
	}
	return s
}

// get returns the current value, re-loading first if a file changed.
func (r *reloading[T]) get() T {
	cur := r.cur.Load()
	now := r.stamps()
	if slices.Equal(now, cur.stamps) {
		return cur.val
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur = r.cur.Load()
	if slices.Equal(now, cur.stamps) {
		return cur.val
	}
	v, err := r.load()
	if err != nil {
		// Keep serving the last good value; remember the stamps so the
		// warning is logged once per change rather than once per handshake.
		r.cur.Store(&loaded[T]{val: cur.val, stamps: now})
		r.logger().Warn("pgsecure: keeping the previous material because the changed file could not be loaded",
			slog.String("file", r.what), slog.String("error", err.Error()))
		return cur.val
	}
	r.cur.Store(&loaded[T]{val: v, stamps: now})
	r.logger().Info("pgsecure: reloaded changed file", slog.String("file", r.what))
	return v
}
