package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pgsecure/pgsecure/internal/certgen"
)

// stageFile writes data to a new temporary file in path's directory (so that
// renaming it onto path is atomic) and syncs it to disk. The file gets mode
// and, when like describes an existing file, like's owner and group, so that
// a key renewed by root stays readable by the server's OS user. It returns
// the temporary file's name; the caller renames it (commitFile) or removes it.
func stageFile(path string, data []byte, mode fs.FileMode, like fs.FileInfo) (tmp string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("pgsecure: cannot create a file next to %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return "", fmt.Errorf("pgsecure: cannot set the mode of %s: %w", f.Name(), err)
	}
	if st, ok := ownerOf(like); ok && (st.Uid != uint32(os.Geteuid()) || st.Gid != uint32(os.Getegid())) {
		if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
			return "", fmt.Errorf("pgsecure: cannot give the new %s the owner of the old one (uid %d, gid %d): %w; run as that user or as root",
				path, st.Uid, st.Gid, err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return "", fmt.Errorf("pgsecure: cannot write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("pgsecure: cannot sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("pgsecure: cannot write %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

func ownerOf(fi fs.FileInfo) (*syscall.Stat_t, bool) {
	if fi == nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// commitFile renames tmp onto path (atomic: a reader sees the old or the new
// file, never a mix) and syncs the directory so the rename survives a crash.
func commitFile(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("pgsecure: cannot replace %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeNewFile writes data to path, which must not exist yet, through a
// staged temporary file.
func writeNewFile(path string, data []byte, mode fs.FileMode, force bool) error {
	if _, err := os.Lstat(path); err == nil && !force {
		return fmt.Errorf("%w: %s already exists; pass --force to overwrite it", certgen.ErrFileExists, path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pgsecure: cannot check %s: %w", path, err)
	}
	tmp, err := stageFile(path, data, mode, nil)
	if err != nil {
		return err
	}
	return commitFile(tmp, path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pgsecure: cannot sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("pgsecure: cannot sync directory %s: %w", dir, err)
	}
	return nil
}
