package stage

import (
	"os"

	"golang.org/x/sys/unix"
)

// willNeed asks the kernel to read n bytes of f from off into the page
// cache now, in the background (POSIX_FADV_WILLNEED): best effort.
func willNeed(f *os.File, off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
}
