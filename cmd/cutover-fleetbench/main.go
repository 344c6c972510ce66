// Command cutover-fleetbench measures the controller with simulated fleets
// of growing size (see internal/fleetbench) and prints issue 15's figures F1–F3
// with the machine's load, then the peer figures F4–F6. It only reads flags.
//
//	make bench-fleet                                        # 10 (baseline), then 1,000 agents; then F4–F6
//	go run ./cmd/cutover-fleetbench -bin bin -agents 100,500,1000,2000
//	go run ./cmd/cutover-fleetbench -bin bin -agents 10000 -idle-only     # two cutover-fleetsim processes
//	go run ./cmd/cutover-fleetbench -bin bin -peers-only -peer-agents 50 -release 64MiB
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/pkg/bytesize"

	"github.com/cutover-dev/cutover/internal/fleetbench"
)

func main() {
	binDir := flag.String("bin", "bin", "directory with cutover-controller (make build)")
	agents := flag.String("agents", "1000", "fleet sizes to measure, comma-separated, smallest first (a size that fails ends the series)")
	baseline := flag.Int("baseline", 10, "fleet size that F3 divides by")
	dir := flag.String("dir", "", "work directory (default: a new temporary directory, removed at the end)")
	simDir := flag.String("sim-dir", defaultSimDir(), "where the simulated agents keep their data (a tmpfs keeps their fsyncs off the controller's disk)")
	timeout := flag.Duration("timeout", 10*time.Minute, "bound of each wait (connection, each stage)")
	idle := flag.Bool("idle-only", false, "measure F1 only: stop once every agent is connected and idle")
	idleWait := flag.Duration("idle-wait", 0, "how long the agents stay connected and idle before F1 is measured (0: at once)")
	perProc := flag.Int("agents-per-process", fleetbench.DefaultAgentsPerProcess, "the most agents simulated in this process: a larger size runs in cutover-fleetsim processes (from -bin) of at most this many each")
	simNice := flag.Int("sim-nice", 10, "nice value of the cutover-fleetsim processes (sizes above -agents-per-process): the controller being measured is served first, as on a machine of its own; 0: no change")
	heap := flag.String("heap-profile", "", "write the controller's heap profile with every agent idle to FILE.N (N: the size), and its CPU profiles over the first 30 s of each stage to FILE.N.cpu-stage1 and .cpu-stage2")
	peers := flag.Bool("peers", true, "measure F4–F6 too (peers sharing a release), after F1–F3")
	peersOnly := flag.Bool("peers-only", false, "measure F4–F6 only")
	peerAgents := flag.Int("peer-agents", 50, "F4–F6: fleet size")
	release := bytesize.Flag(64 << 20)
	flag.Var(&release, "release", "F4–F6: the release's size (random data), e.g. 64MiB, 256MiB")
	egress := bytesize.Flag(50 << 20)
	flag.Var(&egress, "max-egress", "F4–F6: the controller's --max-egress, bytes per second")
	flag.Parse()
	cfg := fleetbench.Config{BinDir: *binDir, Dir: *dir, SimDir: *simDir, Timeout: *timeout, IdleOnly: *idle, IdleWait: *idleWait, AgentsPerProcess: *perProc, SimNice: *simNice, HeapProfile: *heap, Log: os.Stderr}
	var pc *fleetbench.PeerConfig
	if *peers || *peersOnly {
		pc = &fleetbench.PeerConfig{Agents: *peerAgents, ReleaseSize: int64(release), MaxEgress: int64(egress), Timeout: *timeout, Log: os.Stderr}
	}
	os.Exit(run(cfg, pc, !*peersOnly, *agents, *baseline))
}

// defaultSimDir is /dev/shm when it exists, else "" (under -dir).
func defaultSimDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return ""
}

func run(cfg fleetbench.Config, pc *fleetbench.PeerConfig, fleet bool, agents string, baseline int) int {
	var sizes []int
	for f := range strings.SplitSeq(agents, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "cutover-fleetbench: -agents %q: want sizes such as 100,1000\n", agents)
			return 2
		}
		sizes = append(sizes, n)
	}
	var err error
	if cfg.BinDir, err = filepath.Abs(cfg.BinDir); err != nil {
		fmt.Fprintln(os.Stderr, "cutover-fleetbench:", err)
		return 2
	}
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "cutover-fleetbench-"); err != nil {
			fmt.Fprintln(os.Stderr, "cutover-fleetbench:", err)
			return 1
		}
		defer os.RemoveAll(cfg.Dir)
	}
	if cfg.SimDir != "" {
		if cfg.SimDir, err = os.MkdirTemp(cfg.SimDir, "cutover-fleetbench-agents-"); err != nil {
			fmt.Fprintln(os.Stderr, "cutover-fleetbench:", err)
			return 1
		}
		defer os.RemoveAll(cfg.SimDir)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := 0
	if fleet {
		res, err := fleetbench.Series(ctx, cfg, baseline, sizes)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cutover-fleetbench:", err)
			return 1
		}
		fmt.Print(res.Table())
		if len(res.Failed) > 0 {
			code = 1
		}
	}
	if pc != nil {
		pc.BinDir, pc.Dir, pc.SimDir = cfg.BinDir, cfg.Dir, cfg.SimDir
		res, err := fleetbench.PeerSeries(ctx, *pc)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cutover-fleetbench:", err)
			return 1
		}
		fmt.Print(res.Table())
		if len(res.Failed) > 0 {
			code = 1
		}
	}
	return code
}
