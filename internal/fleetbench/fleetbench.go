// Package fleetbench measures the controller with a simulated fleet
// (fleetsim): a real controller binary (internal/localcluster) and N simulated
// agents in this process, over real TLS. For each N it measures the
// controller's memory per idle connected agent (F1), the spread of stage
// 2's swaps (F2) and stage 2's wall time (F3, divided by the same at the
// baseline N), and prints them as a table with the machine's load.
//
// Run it with `make bench-fleet` (cmd/cutover-fleetbench holds the flags).
package fleetbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/fleetsim"
	"github.com/cutover-dev/cutover/internal/bench"
	"github.com/cutover-dev/cutover/internal/localcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Names of what a run creates.
const (
	Environment = "fleet"
	AppName     = "noop"
)

// appSpec is the tiny application deployed: nothing to build, a run
// command the simulator never runs, and a file of a few KiB so that the
// release transfer is not what is measured.
const appSpec = `name: noop
run:
  command: exec sleep 2147483647
`

// Config is one run with one fleet size.
type Config struct {
	// BinDir holds cutover-controller (built without -race for figures).
	BinDir string
	// Dir is an empty directory for the controller, the source and the logs.
	Dir string
	// SimDir holds the simulated agents' data (default: Dir/agents). A
	// tmpfs keeps the agents' fsyncs off the disk the controller uses.
	SimDir string
	// Agents is the fleet size.
	Agents int
	// Timeout bounds each wait (connection, each stage); default 10 min.
	Timeout time.Duration
	// Log receives a line per step; nil: discarded.
	Log io.Writer
	// IdleOnly stops once every agent is connected and idle: F1 alone.
	IdleOnly bool
	// IdleWait is how long every agent stays connected and idle before
	// F1 is measured: 0 measures at once, with the garbage of the
	// agents' handshakes still in the heap.
	IdleWait time.Duration
	// AgentsPerProcess is the most agents simulated in this process; a
	// larger fleet runs in cutover-fleetsim processes (from BinDir) of at
	// most this many. 0: DefaultAgentsPerProcess.
	AgentsPerProcess int
	// SimNice is the nice value of the cutover-fleetsim processes
	// (AgentsPerProcess): 10 serves the controller, which is what is
	// measured, before the simulated fleet on a machine they share, as if
	// it had a machine of its own. 0 leaves them as this process.
	SimNice int
	// HeapProfile, if set, is where the controller's heap profile (in use
	// after a GC, with every agent idle) is written, one file per size:
	// HeapProfile with ".N" appended; and its CPU profiles over the first
	// 30 s of each stage in HeapProfile.N.cpu-stage1 and .cpu-stage2.
	HeapProfile string
}

// Point is what one run measured.
type Point struct {
	// Agents is the fleet size.
	Agents int
	// Connect is the time from the simulator's start until the controller
	// lists every agent connected.
	Connect time.Duration
	// BaseRSS is the controller's RSS with no agent; IdleRSS with every
	// agent connected and idle; PeakRSS its high-water mark over the run.
	BaseRSS, IdleRSS, PeakRSS int64
	// Goroutines is the controller's go_goroutines with every agent idle.
	Goroutines float64
	// Prepare is stage 1's time (prepare → PREPARED).
	Prepare time.Duration
	// Stage2 is stage 2's wall time (the deployment's activate_time to
	// finish_time: continue → DEPLOYED).
	Stage2 time.Duration
	// Spread is the deployment's activation_spread (first to last swap);
	// SwapP99 is the 99th percentile of the agents' swap times minus the
	// first.
	Spread, SwapP99 time.Duration
	// CPUConnect, CPUPrepare and CPUStage2 are the controller's CPU
	// seconds spent while the agents connected, in stage 1, in stage 2.
	CPUConnect, CPUPrepare, CPUStage2 float64
	// State is the deployment's final state.
	State cutoverv1.DeploymentState
	// Machine is the machine's load at the end of the run.
	Machine Machine
}

// RSSPerAgent is F1: (IdleRSS − BaseRSS) ÷ Agents.
func (p Point) RSSPerAgent() int64 { return (p.IdleRSS - p.BaseRSS) / int64(p.Agents) }

// Measure starts a controller and p.Agents simulated agents, deploys the
// tiny application in two stages and returns what it measured. It stops
// everything it started before it returns.
func Measure(ctx context.Context, cfg Config) (p Point, err error) {
	setDefaults(&cfg.Log, &cfg.Timeout, &cfg.SimDir, cfg.Dir)
	p.Agents = cfg.Agents
	say := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%s  N=%d  %s\n", time.Now().Format("15:04:05"), cfg.Agents, fmt.Sprintf(format, args...))
	}
	src := filepath.Join(cfg.Dir, "src")
	if err := WriteApp(src); err != nil {
		return p, err
	}
	// Two files per simulated agent in this process (its connection, its
	// bbolt file); the controller, started from here, inherits the limit
	// and needs one per agent.
	procs := simProcesses(cfg.Agents, cfg.AgentsPerProcess)
	files := uint64(cfg.Agents + 256)
	if procs == 0 {
		files += uint64(cfg.Agents)
		fleetsim.RaiseThreadLimit(cfg.Agents)
	}
	if _, err := fleetsim.RaiseFileLimit(files); err != nil {
		return p, err
	}
	args := []string{"--source-root", src, "--log-level", "warn"}
	pprofAddr := ""
	if cfg.HeapProfile != "" {
		port, err := localcluster.FreePort()
		if err != nil {
			return p, err
		}
		pprofAddr = fmt.Sprintf("127.0.0.1:%d", port)
		args = append(args, "--pprof-listen", pprofAddr)
	}
	c, err := localcluster.Start(ctx, localcluster.Config{BinDir: cfg.BinDir, Dir: cfg.Dir, ControllerArgs: args})
	if c != nil {
		defer c.Close()
	}
	if err != nil {
		return p, fmt.Errorf("start controller: %w", err)
	}
	pid := c.Controller.Pid()
	token := filepath.Join(cfg.Dir, "join.token")
	if err := Setup(ctx, c, src, token, cfg.Agents); err != nil {
		return p, err
	}
	if p.BaseRSS, err = bench.RSS(pid); err != nil {
		return p, err
	}

	cpu0, _ := bench.CPUSeconds(pid)
	start := time.Now()
	var simDone *running
	if procs == 0 {
		say("starting %d simulated agents in this process", cfg.Agents)
		sim, err := fleetsim.New(fleetsim.Config{Controller: c.Addr, Environment: Environment, Agents: cfg.Agents,
			JoinTokenFile: token, CAFile: c.CAFile, DataDir: cfg.SimDir})
		if err != nil {
			return p, err
		}
		simDone = runSim(ctx, sim)
	} else {
		say("starting %d simulated agents in %d cutover-fleetsim processes", cfg.Agents, procs)
		if simDone, err = startSims(c, cfg.Agents, procs, token, cfg.SimDir, cfg.SimNice); err != nil {
			return p, err
		}
	}
	defer func() { err = errors.Join(err, simDone.stop()) }()
	if err := WaitConnected(ctx, c, cfg.Agents, cfg.Timeout, simDone.alive); err != nil {
		return p, err
	}
	p.Connect = time.Since(start)
	cpu1, _ := bench.CPUSeconds(pid)
	p.CPUConnect = cpu1 - cpu0
	if cfg.IdleWait > 0 { // idle means idle: the handshakes' garbage collected, the heap's pages returned
		say("idle for %s before measuring", cfg.IdleWait)
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(cfg.IdleWait):
		}
	}
	if p.IdleRSS, err = bench.RSS(pid); err != nil {
		return p, err
	}
	p.Goroutines, _ = bench.Metric(c.ControllerMetricsAddr, "go_goroutines", nil)
	stacks, _ := bench.Metric(c.ControllerMetricsAddr, "go_memstats_stack_inuse_bytes", nil)
	heap, _ := bench.Metric(c.ControllerMetricsAddr, "go_memstats_heap_inuse_bytes", nil)
	say("connected in %s; controller RSS %d MiB (%d MiB without agents), %.0f goroutines; Go heap in use %.0f MiB, stacks %.0f MiB",
		p.Connect.Round(time.Millisecond), p.IdleRSS>>20, p.BaseRSS>>20, p.Goroutines, heap/(1<<20), stacks/(1<<20))
	if pprofAddr != "" {
		file := fmt.Sprintf("%s.%d", cfg.HeapProfile, cfg.Agents)
		if err := bench.FetchProfile(ctx, pprofAddr, "heap?gc=1", file, time.Minute); err != nil {
			return p, err
		}
		if err := bench.FetchProfile(ctx, pprofAddr, "goroutine?debug=1", file+".goroutines", time.Minute); err != nil {
			return p, err
		}
		say("heap profile in %s (go tool pprof -top -sample_index=inuse_space %s), goroutines in %[1]s.goroutines", file, file)
	}
	if cfg.IdleOnly {
		p.PeakRSS, err = bench.PeakRSS(pid)
		p.Machine = machine()
		return p, err
	}

	d, err := c.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: Environment,
		Applications: []*cutoverv1.ApplicationVersion{{Name: AppName, VersionLabel: "v1"}}})
	if err != nil {
		return p, fmt.Errorf("create deployment: %w", err)
	}
	id := d.GetId()
	say("stage 1 (prepare)")
	profiled := func() {}
	if pprofAddr != "" {
		profiled = profileCPU(ctx, pprofAddr, fmt.Sprintf("%s.%d.cpu-stage1", cfg.HeapProfile, cfg.Agents), say)
	}
	defer func() { profiled() }()
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		return p, fmt.Errorf("prepare %s: %w", id, err)
	}
	if d, err = WaitState(ctx, c, id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED, cfg.Timeout, simDone.alive); err != nil {
		return p, err
	}
	p.Prepare = d.GetPreparedTime().AsTime().Sub(d.GetPrepareTime().AsTime())
	cpu2, _ := bench.CPUSeconds(pid)
	p.CPUPrepare = cpu2 - cpu1
	say("prepared in %s; stage 2 (continue)", p.Prepare.Round(time.Millisecond))
	if pprofAddr != "" { // one CPU profile at a time: stage 1's ends first
		profiled()
		profiled = profileCPU(ctx, pprofAddr, fmt.Sprintf("%s.%d.cpu-stage2", cfg.HeapProfile, cfg.Agents), say)
	}
	if _, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: id}); err != nil {
		return p, fmt.Errorf("continue %s: %w", id, err)
	}
	if d, err = WaitState(ctx, c, id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED, cfg.Timeout, simDone.alive); err != nil {
		return p, err
	}
	cpu3, _ := bench.CPUSeconds(pid)
	p.CPUStage2 = cpu3 - cpu2
	p.State = d.GetState()
	p.Stage2 = d.GetFinishTime().AsTime().Sub(d.GetActivateTime().AsTime())
	p.Spread = d.GetActivationSpread().AsDuration()
	p.SwapP99 = swapP99(d)
	if p.PeakRSS, err = bench.PeakRSS(pid); err != nil {
		return p, err
	}
	p.Machine = machine()
	say("stage 2 in %s, spread %s, swap p99−first %s, peak RSS %d MiB", p.Stage2.Round(time.Millisecond),
		p.Spread.Round(time.Millisecond), p.SwapP99.Round(time.Millisecond), p.PeakRSS>>20)
	return p, nil
}

// WriteApp writes the tiny application's source into dir.
func WriteApp(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(appSpec), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "payload.txt"), []byte(strings.Repeat("cutover fleet bench\n", 200)), 0o644)
}

// Setup creates the two-stage environment (no database: no SQL), registers
// the application and writes a join token for n agents to token.
func Setup(ctx context.Context, c *localcluster.Cluster, src, token string, n int) error {
	return SetupEnv(ctx, c, &cutoverv1.Environment{Name: Environment, TwoStage: true}, src, token, n)
}

// swapP99 is the 99th percentile of d's agents' swap times minus the first.
func swapP99(d *cutoverv1.Deployment) time.Duration {
	var ts []time.Time
	for _, a := range d.GetAgents() {
		if a.GetSwapTime() != nil {
			ts = append(ts, a.GetSwapTime().AsTime())
		}
	}
	if len(ts) == 0 {
		return 0
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts[(len(ts)-1)*99/100].Sub(ts[0])
}

// profileCPU starts fetching the controller's CPU profile over the next
// 30 s into file; the function it returns waits for it.
func profileCPU(ctx context.Context, pprofAddr, file string, say func(string, ...any)) (wait func()) {
	profiled := make(chan error, 1)
	go func() { profiled <- bench.FetchProfile(ctx, pprofAddr, "profile?seconds=30", file, time.Minute) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := <-profiled; err != nil {
				say("no CPU profile in %s: %v", file, err)
			} else {
				say("CPU profile in %s", file)
			}
		})
	}
}
