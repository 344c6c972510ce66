package fleetbench

import (
	"os"
	"runtime"
	"strings"
)

// Machine describes where the figures were measured.
type Machine struct {
	CPUs    int
	LoadAvg string // /proc/loadavg's 1, 5 and 15 minute averages
}

// machine reads the machine's CPUs and load now.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), LoadAvg: "?"}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}
