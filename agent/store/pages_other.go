//go:build !linux

package store

// dropPages does nothing where MADV_DONTNEED is not known to be harmless on
// a shared file mapping.
func dropPages([]byte) {}
