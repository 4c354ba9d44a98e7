// Package atomicfile writes files so that a concurrent reader sees either the old content (or no
// file) or the whole new content, never a partial one.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CreateOnce makes path with data unless it exists, atomically: data goes to a temporary file
// first and is then hard-linked into place, so a concurrent reader sees either no file or the
// whole content (an O_EXCL create would expose an empty file between create and write), and of
// several concurrent writers exactly one wins.
func CreateOnce(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("while creating %s: %w", path, err)
	}
	return nil
}

// Replace writes data to path through a temporary file and a rename.
func Replace(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("while replacing %s: %w", path, err)
	}
	return nil
}

func writeTemp(path string, data []byte, mode os.FileMode) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("while creating %s: %w", path, err)
	}
	name := tmp.Name()
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(name)
		return "", fmt.Errorf("while writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("while writing %s: %w", path, err)
	}
	return name, nil
}
