package stage

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Staging runs at low priority so that it stays out of the way of the apps
// the front-end serves: the goroutines that write, fsync and hash staged
// data lock themselves to an OS thread and lower that thread alone (nice 10,
// I/O best-effort level 7). They never unlock it, so the thread ends with
// the goroutine and its priority never passes to another goroutine. The
// agent process itself is not lowered: the apps it starts would inherit
// its priority.

// Low priority of a staging thread.
const (
	stageNice       = 10
	ioprioClassBE   = 2 // IOPRIO_CLASS_BE
	ioprioClassShft = 13
	stageIOLevel    = 7 // the lowest best-effort level
	ioprioWhoProc   = 1 // IOPRIO_WHO_PROCESS: a thread id
)

// lowerThread locks the calling goroutine to its OS thread for good and
// lowers that thread's CPU and I/O priority. Call it only from a goroutine
// that ends when its work is done. It is best effort: on error the thread
// keeps running, locked, at the priority it had.
func lowerThread() error {
	runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
	tid := unix.Gettid()
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, stageNice); err != nil {
		return fmt.Errorf("lower the CPU priority of staging thread %d: %w", tid, err)
	}
	prio := uintptr(ioprioClassBE<<ioprioClassShft | stageIOLevel)
	if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProc, uintptr(tid), prio); errno != 0 {
		return fmt.Errorf("lower the I/O priority of staging thread %d: %w", tid, errno)
	}
	return nil
}

// threadPriority returns the calling thread's nice value and I/O priority
// class and level (for tests and logs).
func threadPriority() (nice, ioClass, ioLevel int, err error) {
	tid := unix.Gettid()
	p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return 0, 0, 0, err
	}
	v, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProc, uintptr(tid), 0)
	if errno != 0 {
		return 0, 0, 0, errno
	}
	// The raw getpriority system call returns 20 - nice.
	return 20 - p, int(v >> ioprioClassShft), int(v & (1<<ioprioClassShft - 1)), nil
}
