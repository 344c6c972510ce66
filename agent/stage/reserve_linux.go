package stage

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// reserve gives out its final size, allocating the disk space now
// (fallocate), so that a disk too small for the release fails here, before
// anything is fetched, and writes later fill space already allocated. A
// file system without fallocate gets a sparse file (ftruncate).
func reserve(out *os.File, size int64) error {
	err := syscall.Fallocate(int(out.Fd()), 0, 0, size)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("not enough free space for %s (%d bytes); free some space on the agent's disk, then stage again: %w", out.Name(), size, errkind.FailedPrecondition)
	case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
		return out.Truncate(size)
	}
	return err
}
