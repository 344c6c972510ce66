//go:build !linux

package stage

import "os"

// willNeed does nothing where there is no posix_fadvise.
func willNeed(*os.File, int64, int64) {}
