package store

import (
	"syscall"
	"unsafe"
)

// dropMap advises the kernel that the process no longer needs any page of
// bbolt's read-only shared memory map (MADV_DONTNEED over [data,
// data+size)), anchor being a value read from that map. For a shared file
// mapping this only unmaps the pages: the data stays in the page cache and
// in the file, and a later read maps it again with the same content. It
// does nothing unless anchor lies inside the map (bbolt copies the values of
// small inline buckets to the heap, where MADV_DONTNEED would zero memory).
// Call it inside a read-only transaction, which keeps the map in place.
func dropMap(anchor []byte, data uintptr, size int) {
	if len(anchor) == 0 || size <= 0 {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(anchor))
	off := uintptr(p) - data
	if uintptr(p) < data || off+uintptr(len(anchor)) > uintptr(size) {
		return
	}
	_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, -int(off))), size), syscall.MADV_DONTNEED)
}
