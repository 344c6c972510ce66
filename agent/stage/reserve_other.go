//go:build !linux

package stage

import "os"

// reserve gives out its final size (a sparse file).
func reserve(out *os.File, size int64) error { return out.Truncate(size) }
