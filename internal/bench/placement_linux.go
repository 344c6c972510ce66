package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Where the latency figure's processes run. On a real fleet the controller
// is another machine: here it is lowered (nice 19, I/O class idle) and
// pinned to the last CPU, and the front-end (the served app, its load, the
// staging agent) to the others. Priority and affinity are per thread in
// Linux, so each is set on every thread of the process; threads started
// later inherit them from the thread that starts them.

// ioprioIdle is IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT; ioprioWhoProcess
// is IOPRIO_WHO_PROCESS (a thread id).
const (
	ioprioIdle       = 3 << 13
	ioprioWhoProcess = 1
)

// threads returns the thread ids of process pid.
func threads(pid int) ([]int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, tid)
		}
	}
	return out, nil
}

// lowerProcess gives every thread of pid nice 19 and the idle I/O class.
func lowerProcess(pid int) error {
	tids, err := threads(pid)
	if err != nil {
		return err
	}
	for _, tid := range tids {
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, 19); err != nil {
			return fmt.Errorf("nice thread %d of %d: %w", tid, pid, err)
		}
		if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioIdle); errno != 0 {
			return fmt.Errorf("ioprio of thread %d of %d: %w", tid, pid, errno)
		}
	}
	return nil
}

// pinProcess restricts every thread of pid to cpus.
func pinProcess(pid int, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tids, err := threads(pid)
	if err != nil {
		return err
	}
	for _, tid := range tids {
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return fmt.Errorf("pin thread %d of %d to CPUs %v: %w", tid, pid, cpus, err)
		}
	}
	return nil
}

// onlineCPUs returns the CPUs this process may run on.
func onlineCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var out []int
	for c := range 1024 {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

// loadAverage returns the 1, 5 and 15 minute load averages, as
// /proc/loadavg says them ("?" if it cannot be read).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
