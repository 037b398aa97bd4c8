package secrets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxSecretFile bounds what File reads from one file.
const maxSecretFile = 1 << 20

// changeStamp describes the secret cheaply enough to check on every call:
// modification time and size of each file, and for a directory the target
// of the "..data" symlink that Kubernetes swaps atomically.
func (s *fileSource) changeStamp() (stamp string, isDir bool, err error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return "", false, s.ioError(err)
	}
	if !fi.IsDir() {
		return "file" + fileStamp(fi), false, nil
	}
	var b strings.Builder
	target, _ := os.Readlink(filepath.Join(s.path, "..data"))
	b.WriteString("dir:" + target)
	for _, names := range s.cfg.names {
		for _, n := range names {
			if fi, err := os.Stat(filepath.Join(s.path, n)); err == nil {
				b.WriteString(fileStamp(fi))
			} else {
				b.WriteString("|-")
			}
		}
	}
	return b.String(), true, nil
}

func fileStamp(fi fs.FileInfo) string {
	return fmt.Sprintf("|%d:%d", fi.ModTime().UnixNano(), fi.Size())
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
	f, err := os.Open(path)
	if err != nil {
		return nil, s.ioError(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, s.ioError(err)
	}
	if len(b) > maxSecretFile {
		return nil, newError(ErrInvalid, s.name, fmt.Sprintf("%s is larger than %d bytes; is it the right file?", path, maxSecretFile), nil)
	}
	return b, nil
}

// ioError classifies an os error; its text holds a path, never content.
func (s *fileSource) ioError(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return newError(ErrNotFound, s.name, "not found: mount the secret there or fix the path", err)
	}
	return newError(ErrUnavailable, s.name, "cannot be read; check its permissions", err)
}
