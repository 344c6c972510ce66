package stage

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// reflink makes out share in's blocks (FICLONE); it fails where the file
// system cannot (ext4, across file systems).
func reflink(out, in *os.File) error {
	return unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
}

// copyRange copies n bytes at off from in to out in the kernel
// (copy_file_range), returning how many it copied.
func copyRange(out, in *os.File, off, n int64) (int64, error) {
	roff, woff := off, off
	w, err := unix.CopyFileRange(int(in.Fd()), &roff, int(out.Fd()), &woff, int(n), 0)
	return int64(w), err
}

// linkClones says unchanged files may be hard-linked (links counts names).
const linkClones = true

// links returns how many names info's inode has (1 if unknown).
func links(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
