//go:build !linux

package stage

import "runtime"

// lowerThread locks the calling goroutine to its OS thread for good; only
// Linux lowers the thread's priority (priority_linux.go).
func lowerThread() error {
	runtime.LockOSThread()
	return nil
}

// threadPriority is known on Linux only.
func threadPriority() (nice, ioClass, ioLevel int, err error) { return 0, 0, 0, nil }
