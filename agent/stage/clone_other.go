//go:build !linux

package stage

import (
	"errors"
	"io/fs"
	"os"
)

// reflink is Linux only (clone_linux.go).
func reflink(out, in *os.File) error { return errors.ErrUnsupported }

// copyRange is Linux only (clone_linux.go).
func copyRange(out, in *os.File, off, n int64) (int64, error) { return 0, errors.ErrUnsupported }

// linkClones is false: links counts no names here, so the fill could not
// tell a linked inode from its own; unchanged files are copied instead.
const linkClones = false

// links is Linux only (clone_linux.go).
func links(info fs.FileInfo) uint64 { return 1 }
