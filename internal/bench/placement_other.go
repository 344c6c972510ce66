//go:build !linux

package bench

import "errors"

// The latency figure's placement is Linux only (placement_linux.go):
// elsewhere the processes run where the system puts them.

func lowerProcess(int) error      { return errors.ErrUnsupported }
func pinProcess(int, []int) error { return errors.ErrUnsupported }
func onlineCPUs() []int           { return nil }
func loadAverage() string         { return "?" }
