package certgen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File modes used by WriteKeyPair.
const (
	CertFileMode fs.FileMode = 0o644
	KeyFileMode  fs.FileMode = 0o600
)

// ErrFileExists is wrapped by WriteKeyPair's error when a target file already
// exists and force is false. It also matches fs.ErrExist with errors.Is.
var ErrFileExists = fmt.Errorf("pgsecure/certgen: %w", fs.ErrExist)

// WriteKeyPair writes certPEM to dir/name.crt (mode 0644) and keyPEM to
// dir/name.key (mode 0600), creating dir (0755) when missing. Unless force is
// true it refuses, before writing anything, when either file exists; the error
// wraps ErrFileExists and says to use --force. Each file is written to a
// temporary file and moved into place, so a reader never sees a partial file and
// an overwritten key never keeps a looser mode. name must be a plain file name.
func WriteKeyPair(dir, name string, certPEM, keyPEM []byte, force bool) (certPath, keyPath string, err error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", "", fmt.Errorf("%w: file name %q must be a plain name without a directory", ErrInvalidOptions, name)
	}
	certPath = filepath.Join(dir, name+".crt")
	keyPath = filepath.Join(dir, name+".key")
	if !force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return "", "", fmt.Errorf("%w: %s; use --force to overwrite it", ErrFileExists, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", "", fmt.Errorf("pgsecure/certgen: cannot check %s: %w", p, err)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("pgsecure/certgen: cannot create directory %s: %w", dir, err)
	}
	if err := writeFile(keyPath, keyPEM, KeyFileMode, force); err != nil {
		return "", "", err
	}
	if err := writeFile(certPath, certPEM, CertFileMode, force); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// writeFile writes data to a temporary file in path's directory with mode, then
// renames it onto path (force) or hard-links it there, which fails if path
// appeared meanwhile.
func writeFile(path string, data []byte, mode fs.FileMode, force bool) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pgsecure/certgen: cannot create a file next to %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if rmErr := os.Remove(tmpName); err == nil && rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			err = fmt.Errorf("pgsecure/certgen: cannot remove temporary file %s: %w", tmpName, rmErr)
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("pgsecure/certgen: cannot set mode of %s: %w", tmpName, err)
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("pgsecure/certgen: cannot write %s: %w", path, werr)
	}
	if force {
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("pgsecure/certgen: cannot replace %s: %w", path, err)
		}
		return nil
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s; use --force to overwrite it", ErrFileExists, path)
		}
		return fmt.Errorf("pgsecure/certgen: cannot create %s: %w", path, err)
	}
	return nil
}
