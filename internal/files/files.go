// Package files is how pgsecure reads the files it is pointed at
// (certificates, keys, secret files, Vault tokens and secret IDs): one
// bounded regular-file reader, and one cheap change detector that notices
// in-place rewrites and Kubernetes' atomic "..data" symlink swaps.
package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MaxSize bounds every file Read reads: 1 MiB, far more than any
// certificate chain, key or secret.
const MaxSize = 1 << 20

// Errors Read wraps besides the os errors (fs.ErrNotExist, fs.ErrPermission).
var (
	// ErrNotRegular: the path is a directory, device, FIFO or socket (a
	// device such as /dev/zero or a FIFO would block or exhaust memory).
	ErrNotRegular = errors.New("is not a regular file")
	// ErrTooLarge: the file is larger than MaxSize.
	ErrTooLarge = errors.New("is larger than 1 MiB")
)

// Read reads the regular file at path, at most MaxSize bytes. check, when
// not nil, inspects the opened file first (permissions). Errors name the
// path and never contain the file's content.
func Read(path string, check func(fs.FileInfo) error) ([]byte, error) {
	return ReadUpTo(path, MaxSize, check)
}

// ReadUpTo is Read with another bound, for files that may legitimately be
// larger than MaxSize (a CA's certificate revocation list); a larger file
// fails with ErrTooLarge.
func ReadUpTo(path string, max int64, check func(fs.FileInfo) error) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %w", path, ErrNotRegular)
	}
	if fi.Size() > max {
		return nil, tooLarge(path, max)
	}
	if check != nil {
		if err := check(fi); err != nil {
			return nil, err
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		if max == MaxSize {
			return nil, fmt.Errorf("%s grew while being read: it %w", path, ErrTooLarge)
		}
		return nil, fmt.Errorf("grew while being read: %w", tooLarge(path, max))
	}
	return b, nil
}

// tooLarge is ErrTooLarge for path, naming the bound when it is not MaxSize.
func tooLarge(path string, max int64) error {
	if max == MaxSize {
		return fmt.Errorf("%s %w", path, ErrTooLarge)
	}
	return &sizeError{path: path, max: max}
}

// sizeError is ErrTooLarge (errors.Is) for a bound other than MaxSize.
type sizeError struct {
	path string
	max  int64
}

func (e *sizeError) Error() string        { return fmt.Sprintf("%s is larger than %d MiB", e.path, e.max>>20) }
func (e *sizeError) Is(target error) bool { return target == ErrTooLarge }

// ReadTrimmed reads a one-value file (a token, a secret ID) with Read and
// trims surrounding white space. An empty value is an error naming what.
func ReadTrimmed(path, what string) (string, error) {
	b, err := Read(path, nil)
	if err != nil {
		return "", fmt.Errorf("read %s file: %w", what, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	return s, nil
}

// Stamp describes a set of files cheaply enough to compute on every use:
// for each path, the file it resolves to after following symlinks (so a
// Kubernetes "..data" swap changes it even when size and time do not), its
// size and its modification time, or that it is missing. Equal stamps mean
// "unchanged" except for a rewrite that keeps path, size and time.
type Stamp string

// StampOf returns the stamp of paths.
func StampOf(paths ...string) Stamp {
	var b strings.Builder
	for _, p := range paths {
		b.WriteString("|")
		fi, err := os.Lstat(p)
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			// Kubernetes' files are symlinks through "..data": name the
			// file they resolve to now.
			var real string
			if real, err = filepath.EvalSymlinks(p); err == nil {
				b.WriteString(real)
				fi, err = os.Stat(real)
			}
		}
		if err != nil {
			b.WriteString("-")
			continue
		}
		fmt.Fprintf(&b, ":%d:%d", fi.Size(), fi.ModTime().UnixNano())
	}
	return Stamp(b.String())
}
