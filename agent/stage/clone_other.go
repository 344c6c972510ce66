//go:build !linux

package stage

import (
	"errors"
	"os"
)

// reflink is Linux only (clone_linux.go).
func reflink(out, in *os.File) error { return errors.ErrUnsupported }

// copyRange is Linux only (clone_linux.go).
func copyRange(out, in *os.File, off, n int64) (int64, error) { return 0, errors.ErrUnsupported }
