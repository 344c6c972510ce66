//go:build !unix

package fleetsim

// RaiseFileLimit does nothing where there is no RLIMIT_NOFILE.
func RaiseFileLimit(want uint64) (uint64, error) { return want, nil }
