package fleetbench

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/cutover-dev/cutover/internal/localcluster"
)

// DefaultAgentsPerProcess is the most simulated agents Measure runs in
// its own process; a larger fleet is split among cutover-fleetsim
// processes of at most this many. Each simulated agent holds two open
// files (its connection, its bbolt file) and a process's hard limit may
// be as low as 20,000 without the right to raise it; one process also
// puts every agent's goroutines under one garbage collector.
const DefaultAgentsPerProcess = 5000

// simStageConcurrency is how many agents of one cutover-fleetsim process
// stage at once. At 10,000 agents on 2 CPUs, all staging at once, the
// simulators' connections were cut by thousands (keepalive pings
// unanswered for 5 s) while the controller used a fifth of one CPU, and
// stage 1 failed each time.
const simStageConcurrency = 64

// simProcesses is how many cutover-fleetsim processes run n agents at
// most per each: 0 when n fits in this process.
func simProcesses(n, per int) int {
	if per <= 0 {
		per = DefaultAgentsPerProcess
	}
	if n <= per {
		return 0
	}
	return (n + per - 1) / per
}

// startSims starts procs cutover-fleetsim processes from c's BinDir that
// run n agents between them, named sim<P>-NNNNN, each with its data under
// simDir/p<P>, all enrolling with the join token in token, at nice value
// nice (0: as this process).
func startSims(c *localcluster.Cluster, n, procs int, token, simDir string, nice int) (*running, error) {
	var ps []*localcluster.Proc
	stop := func() error {
		for _, p := range ps {
			p.Stop()
		}
		var errs []error
		for _, p := range ps {
			if _, err := p.Exited(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
			}
		}
		return errors.Join(errs...)
	}
	for i := range procs {
		share := n / procs
		if i < n%procs {
			share++
		}
		name := fmt.Sprintf("fleetsim-%d", i)
		p, err := c.StartProc(name, "cutover-fleetsim", "--controller", c.Addr, "--environment", Environment,
			"--agents", strconv.Itoa(share), "--join-token-file", token, "--ca-file", c.CAFile,
			"--name-prefix", fmt.Sprintf("sim%d-", i), "--data-dir", filepath.Join(simDir, fmt.Sprintf("p%d", i)),
			"--stage-concurrency", strconv.Itoa(simStageConcurrency))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("start %s: %w", name, err), stop())
		}
		ps = append(ps, p)
		if nice != 0 {
			// Every thread of its process group (its own); the threads the
			// runtime starts later inherit it from the thread that starts them.
			if err := syscall.Setpriority(syscall.PRIO_PGRP, p.Pid(), nice); err != nil {
				return nil, errors.Join(fmt.Errorf("renice %s: %w", name, err), stop())
			}
		}
	}
	return &running{
		alive: func() error {
			for _, p := range ps {
				if ended, err := p.Exited(); ended {
					return fmt.Errorf("simulator %s stopped (%v); its log ends with:\n%s", p.Name, err, p.Tail(10))
				}
			}
			return nil
		},
		stop: stop,
	}, nil
}
