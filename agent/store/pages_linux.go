package store

import (
	"os"
	"syscall"
	"unsafe"
)

var pageSize = uintptr(os.Getpagesize())

// dropPages advises the kernel that the whole pages inside b, a slice of
// bbolt's read-only shared memory map, are not needed by this process any
// more (MADV_DONTNEED). For a shared file mapping this only unmaps them:
// the data stays in the page cache and in the file, and a later read maps
// it again. Partial pages at either end are left alone.
func dropPages(b []byte) {
	if len(b) == 0 {
		return
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	off := int((pageSize - addr%pageSize) % pageSize)
	if off >= len(b) {
		return
	}
	n := (len(b) - off) / int(pageSize) * int(pageSize)
	if n == 0 {
		return
	}
	_ = syscall.Madvise(b[off:off+n], syscall.MADV_DONTNEED)
}
