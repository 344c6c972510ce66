package store

import (
	"os"
	"syscall"
	"unsafe"
)

var pageSize = uintptr(os.Getpagesize())

// dropPages advises the kernel that the pages holding b, a slice of bbolt's
// read-only shared memory map, are not needed by this process any more
// (MADV_DONTNEED), the partial pages at either end included. b must come
// from the map: a value of a read-only transaction at least a page long
// (bbolt copies to the heap only the values of small inline buckets, less
// than a quarter page; on heap memory MADV_DONTNEED would zero it). For a shared
// file mapping this only unmaps them: the data stays in the page cache and
// in the file, and a later read of any byte of those pages (b's neighbours
// too) maps it again with the same content. bbolt maps whole pages, so the
// rounded range stays inside its mapping.
func dropPages(b []byte) {
	if uintptr(len(b)) < pageSize {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	off := uintptr(p) % pageSize
	n := (off + uintptr(len(b)) + pageSize - 1) &^ (pageSize - 1)
	_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, -int(off))), n), syscall.MADV_DONTNEED)
}
