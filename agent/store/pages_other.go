//go:build !linux

package store

// dropMap does nothing where MADV_DONTNEED is not known to be harmless on a
// shared file mapping.
func dropMap([]byte, uintptr, int) {}
