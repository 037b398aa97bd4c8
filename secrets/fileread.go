package secrets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pgsecure/pgsecure/internal/files"
)

// changeStamp describes the secret cheaply enough to check on every call
// (see files.StampOf): for a directory every candidate file, followed
// through Kubernetes' "..data" symlink, which it swaps atomically.
func (s *fileSource) changeStamp() (stamp files.Stamp, isDir bool, err error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return "", false, s.ioError(err)
	}
	if !fi.IsDir() {
		return files.StampOf(s.path), false, nil
	}
	var paths []string
	for _, names := range s.cfg.names {
		for _, n := range names {
			paths = append(paths, filepath.Join(s.path, n))
		}
	}
	return "dir" + files.StampOf(paths...), true, nil
}

func (s *fileSource) read(isDir bool) (Credentials, error) {
	if !isDir {
		if s.cfg.custom {
			return Credentials{}, newError(ErrInvalid, s.name, "file name options apply to a secret directory, "+
				"but this is a file (read as JSON); drop the options or point at the directory", nil)
		}
		b, err := s.readFile(s.path)
		if err != nil {
			return Credentials{}, err
		}
		return parseJSON(b, s.name)
	}
	var vals [numFields]string
	for f := range numFields {
		v, found, err := s.readField(f)
		if err != nil {
			return Credentials{}, err
		}
		required := f == fieldUser || f == fieldPassword
		if required && !found {
			return Credentials{}, newError(ErrNotFound, s.name, fmt.Sprintf("the directory has no %s file; "+
				"create it or name it with %s", strings.Join(s.cfg.names[f], " or "), fileParams[f]), nil)
		}
		if required && v == "" {
			return Credentials{}, newError(ErrInvalid, s.name, fmt.Sprintf("the %s file is empty", fileParams[f]), nil)
		}
		vals[f] = v
	}
	c := Credentials{User: vals[fieldUser], Password: NewSecret(vals[fieldPassword]), Host: vals[fieldHost], Database: vals[fieldDatabase]}
	if p := strings.TrimSpace(vals[fieldPort]); p != "" {
		port, ok := parsePort(p)
		if !ok {
			return Credentials{}, newError(ErrInvalid, s.name, "the port file does not hold a port number between 1 and 65535", nil)
		}
		c.Port = port
	}
	return c, nil
}

// readField reads the first existing file among the field's names, trailing
// newlines trimmed.
func (s *fileSource) readField(f fileField) (val string, found bool, err error) {
	for _, n := range s.cfg.names[f] {
		b, err := s.readFile(filepath.Join(s.path, n))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		return strings.TrimRight(string(b), "\r\n"), true, nil
	}
	return "", false, nil
}

func (s *fileSource) readFile(path string) ([]byte, error) {
	b, err := files.Read(path, nil)
	switch {
	case errors.Is(err, files.ErrNotRegular), errors.Is(err, files.ErrTooLarge):
		return nil, &Error{Kind: ErrInvalid, Source: s.name, Op: "read", Hint: "point it at a regular file of at most 1 MiB", Err: err}
	case err != nil:
		return nil, s.ioError(err)
	}
	return b, nil
}

// ioError classifies an os error; its text holds a path, never content.
func (s *fileSource) ioError(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return &Error{Kind: ErrNotFound, Source: s.name, Op: "read", Hint: "not found: mount the secret there or fix the path", Err: err}
	}
	return &Error{Kind: ErrUnavailable, Source: s.name, Op: "read", Hint: "cannot be read; check its permissions", Err: err}
}
