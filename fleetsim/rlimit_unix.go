//go:build unix

package fleetsim

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises the soft limit on open files to want, raising the
// hard limit too when it is lower and the process may (root); short of
// that, to the hard limit. It returns the soft limit in force afterwards,
// and an error when that is below want.
func RaiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open files limit: %w", err)
	}
	if lim.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return want, nil
		}
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raise the open files limit to %d: %w", lim.Max, err)
		}
	}
	if lim.Cur < want {
		return lim.Cur, fmt.Errorf("open files limit %d (hard) is below the %d needed; raise it (ulimit -Hn) or run fewer agents per process", lim.Cur, want)
	}
	return lim.Cur, nil
}
