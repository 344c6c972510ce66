// Command cutover-bench measures cutover with the real controller and
// agents on loopback (see internal/bench). It only reads flags. Two modes:
//
//	-mode transfer: release transfer on seeded random data, issue 3's table
//	-mode switch:   stage 2 of examples/listen under a continuous probe,
//	                with run.listen and without, alternating (issue 12's table)
//
//	make bench                                         # transfer: 1 GiB, 10 agents
//	go run ./cmd/cutover-bench -bin bin -size 128MiB   # a quick transfer run
//	make bench-switch                                  # switch: 3 front-ends, 10 continues each
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/cutover-dev/cutover/internal/bench"
)

// options are the flags.
type options struct {
	mode, binDir, size, dir string
	latencyRate, profileDir string
	agents, frontEnds, reps int
	v2Reps                  int
	noLatency               bool
	seed                    uint64
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "transfer", "what to measure: transfer (issue 3) or switch (issue 12)")
	flag.StringVar(&o.binDir, "bin", "bin", "directory with cutover-controller and cutover-agent (make build), and listen for -mode switch")
	flag.StringVar(&o.size, "size", "1GiB", "transfer: release size (e.g. 1GiB, 128MiB)")
	flag.IntVar(&o.agents, "agents", 10, "transfer: agents that stage at once for the many-agents figure")
	flag.Uint64Var(&o.seed, "seed", 1, "transfer: seed of the generated data")
	flag.StringVar(&o.latencyRate, "latency-stage-rate", "0", "transfer: the latency figure's prepares capped at this many bytes per second (e.g. 64MiB; 0: none)")
	flag.IntVar(&o.frontEnds, "frontends", 3, "switch: front-ends (agents) of each side")
	flag.IntVar(&o.reps, "reps", 10, "switch: continues of each side, alternating")
	flag.IntVar(&o.v2Reps, "v2-reps", 3, "transfer: v2 prepares (1% of the files changed each time) and rsyncs whose median ratio is issue 12's figure (b)")
	flag.BoolVar(&o.noLatency, "no-latency", false, "transfer: leave out the served app's latency figure (the longest step), to iterate on the others")
	flag.StringVar(&o.profileDir, "profile", "", "transfer: directory to write CPU profiles and execution traces of the controller and one agent into, taken during the prepares of the first release and of the v2 to many agents (off if empty)")
	flag.StringVar(&o.dir, "dir", "", "work directory (default: a new temporary directory, removed at the end)")
	flag.Parse()
	os.Exit(run(o))
}

func run(o options) int {
	var err error
	if o.binDir, err = filepath.Abs(o.binDir); err != nil {
		fmt.Fprintln(os.Stderr, "cutover-bench:", err)
		return 2
	}
	if o.mode != "transfer" && o.mode != "switch" {
		fmt.Fprintf(os.Stderr, "cutover-bench: -mode %q: want transfer or switch\n", o.mode)
		return 2
	}
	size, err := bench.ParseSize(o.size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cutover-bench: -size:", err)
		return 2
	}
	latencyRate := int64(0)
	if o.latencyRate != "0" {
		if latencyRate, err = bench.ParseSize(o.latencyRate); err != nil {
			fmt.Fprintln(os.Stderr, "cutover-bench: -latency-stage-rate:", err)
			return 2
		}
	}
	if o.profileDir != "" {
		if o.profileDir, err = filepath.Abs(o.profileDir); err == nil {
			err = os.MkdirAll(o.profileDir, 0o755)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cutover-bench: -profile:", err)
			return 1
		}
	}
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "cutover-bench-"); err != nil {
			fmt.Fprintln(os.Stderr, "cutover-bench:", err)
			return 1
		}
		defer os.RemoveAll(o.dir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok := false
	if o.mode == "switch" {
		res, err := bench.RunSwitch(ctx, bench.SwitchConfig{BinDir: o.binDir, Dir: o.dir, FrontEnds: o.frontEnds, Reps: o.reps, Log: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, "cutover-bench:", err)
			return 1
		}
		fmt.Print(res.Samples())
		fmt.Println()
		fmt.Println(res.Table())
		ok = res.OK()
	} else {
		res, err := bench.Run(ctx, bench.Config{BinDir: o.binDir, Dir: o.dir, Size: size, Agents: o.agents, Seed: o.seed,
			LatencyStageRate: latencyRate, ProfileDir: o.profileDir, V2Reps: o.v2Reps, NoLatency: o.noLatency, Log: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, "cutover-bench:", err)
			return 1
		}
		fmt.Println(res.Table())
		fmt.Print(res.Context())
		ok = res.OK()
	}
	if !ok {
		return 1
	}
	return 0
}
