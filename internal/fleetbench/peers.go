package fleetbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cutover-dev/cutover/agent/peer"
	"github.com/cutover-dev/cutover/fleetsim"
	"github.com/cutover-dev/cutover/internal/bench"
	"github.com/cutover-dev/cutover/internal/localcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// PeerConfig is one run of the peer figures (F4–F6): a controller capped
// at MaxEgress, Agents simulated agents that serve peers, and one prepare
// of a release of ReleaseSize bytes of random data.
type PeerConfig struct {
	// BinDir holds cutover-controller.
	BinDir string
	// Dir is an empty directory for the controller, the source and the logs.
	Dir string
	// SimDir holds the simulated agents' data (default: Dir/agents).
	SimDir string
	// Agents is the fleet size.
	Agents int
	// ReleaseSize is the release's size, in bytes (random data: no
	// compression helps).
	ReleaseSize int64
	// MaxEgress is the controller's --max-egress, in bytes per second (0: none).
	MaxEgress int64
	// PeersOff turns the environment's peer sharing off (peers_disabled).
	PeersOff bool
	// Fault is what agent 0 (the owner of slice 0 in group 0, the root of
	// that slice's tree) does after it served FaultAfter bytes.
	Fault      Fault
	FaultAfter int64
	// Timeout bounds each wait; default 10 min.
	Timeout time.Duration
	// Log receives a line per step; nil: discarded.
	Log io.Writer
}

// Fault is a peer's misbehaviour in a run.
type Fault int

// The faults a run injects.
const (
	NoFault Fault = iota
	// Killed: the peer's serving dies (every fetch from it fails from
	// then on, mid-stream); the agent itself goes on staging.
	Killed
	// Corrupting: the peer sends every chunk with wrong bytes from then on.
	Corrupting
)

func (f Fault) String() string {
	switch f {
	case Killed:
		return "killed"
	case Corrupting:
		return "corrupting"
	}
	return "none"
}

// PeerPoint is what one peer run measured.
type PeerPoint struct {
	Agents   int
	PeersOff bool
	Fault    Fault
	// ReleaseBytes is the release's size.
	ReleaseBytes int64
	// ControllerSent is the release data the controller sent
	// (cutover_transfer_bytes_total of the environment).
	ControllerSent int64
	// Transfer is stage 1's time without the build: prepared_time −
	// prepare_time − build_duration.
	Transfer time.Duration
	// Received is each agent's transferred_bytes (wire bytes received for
	// the deployment); Served what each served to peers (its
	// cutover_transfer_peer_served_bytes_total); both by agent index.
	Received []int64
	Served   []float64
	// Corrupt and Failures add up the agents' peer_corrupt and
	// peer_failures counters.
	Corrupt, Failures float64
	// FaultyGood is what the faulty peer handed on intact (its fetches'
	// last batch may not have left when it was killed).
	FaultyGood int64
	// CPU is the controller's CPU seconds during the prepare; SimCPU this
	// process's (the simulated agents').
	CPU, SimCPU float64
	// State is the deployment's final state.
	State   cutoverv1.DeploymentState
	Machine Machine
}

// MeasurePeers starts a controller and cfg.Agents simulated agents that
// serve peers, prepares one release and returns what it measured. It
// stops everything it started before it returns.
func MeasurePeers(ctx context.Context, cfg PeerConfig) (p PeerPoint, err error) {
	setDefaults(&cfg.Log, &cfg.Timeout, &cfg.SimDir, cfg.Dir)
	p.Agents, p.PeersOff, p.Fault = cfg.Agents, cfg.PeersOff, cfg.Fault
	say := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%s  peers N=%d off=%v fault=%s  %s\n", time.Now().Format("15:04:05"), cfg.Agents, cfg.PeersOff, cfg.Fault, fmt.Sprintf(format, args...))
	}
	src := filepath.Join(cfg.Dir, "src")
	if err := bench.Generate(src, cfg.ReleaseSize, 15); err != nil {
		return p, err
	}
	if _, err := fleetsim.RaiseFileLimit(uint64(8*cfg.Agents + 256)); err != nil {
		return p, err
	}
	args := []string{"--source-root", src, "--log-level", "warn", "--max-egress", strconv.FormatInt(cfg.MaxEgress, 10)}
	c, err := localcluster.Start(ctx, localcluster.Config{BinDir: cfg.BinDir, Dir: cfg.Dir, ControllerArgs: args})
	if c != nil {
		defer c.Close()
	}
	if err != nil {
		return p, fmt.Errorf("start controller: %w", err)
	}
	token := filepath.Join(cfg.Dir, "join.token")
	env := &cutoverv1.Environment{Name: Environment, TwoStage: true, PeersDisabled: cfg.PeersOff}
	if err := SetupEnv(ctx, c, env, src, token, cfg.Agents); err != nil {
		return p, err
	}
	faulty := &faultyHeld{fault: cfg.Fault, after: cfg.FaultAfter}
	sim, err := fleetsim.New(fleetsim.Config{Controller: c.Addr, Environment: Environment, Agents: cfg.Agents,
		JoinTokenFile: token, CAFile: c.CAFile, DataDir: cfg.SimDir, Peers: true,
		WrapHeld: func(name string, h peer.Held) peer.Held {
			if name != fleetsim.Name("sim-", 0) || cfg.Fault == NoFault {
				return h
			}
			faulty.Held = h
			return faulty
		}})
	if err != nil {
		return p, err
	}
	simDone := runSim(ctx, sim)
	defer func() { err = errors.Join(err, simDone.stop()) }()
	if err := WaitConnected(ctx, c, cfg.Agents, cfg.Timeout, simDone.alive); err != nil {
		return p, err
	}
	d, err := c.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: Environment,
		Applications: []*cutoverv1.ApplicationVersion{{Name: bench.AppName, VersionLabel: "v1"}}})
	if err != nil {
		return p, fmt.Errorf("create deployment: %w", err)
	}
	pid := c.Controller.Pid()
	cpu0, _ := bench.CPUSeconds(pid)
	sim0, _ := bench.CPUSeconds(os.Getpid())
	say("prepare")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d.GetId()}); err != nil {
		return p, fmt.Errorf("prepare %s: %w", d.GetId(), err)
	}
	d, err = WaitState(ctx, c, d.GetId(), cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED, cfg.Timeout, simDone.alive)
	if d != nil {
		p.State = d.GetState()
	}
	if err != nil {
		return p, err
	}
	cpu1, _ := bench.CPUSeconds(pid)
	sim1, _ := bench.CPUSeconds(os.Getpid())
	p.CPU, p.SimCPU = cpu1-cpu0, sim1-sim0
	p.Transfer = d.GetPreparedTime().AsTime().Sub(d.GetPrepareTime().AsTime()) - d.GetBuildDuration().AsDuration()
	p.Received = make([]int64, cfg.Agents)
	byName := map[string]int{}
	for i, n := range sim.Names() {
		byName[n] = i
	}
	for _, a := range d.GetAgents() {
		p.Received[byName[a.GetName()]] = a.GetTransferredBytes()
		p.ReleaseBytes = a.GetReleaseBytes()
	}
	sent, err := bench.Metric(c.ControllerMetricsAddr, "cutover_transfer_bytes_total", map[string]string{"environment": Environment})
	if err != nil {
		return p, err
	}
	p.ControllerSent = int64(sent)
	p.Served = make([]float64, cfg.Agents)
	for i := range cfg.Agents {
		p.Served[i] = sim.Metric(i, "cutover_transfer_peer_served_bytes_total")
		p.Corrupt += sim.Metric(i, "cutover_transfer_peer_corrupt_total")
		p.Failures += sim.Metric(i, "cutover_transfer_peer_failures_total")
	}
	p.FaultyGood = faulty.good.Load()
	p.Machine = machine()
	say("prepared: transfer %s, the controller sent %.2f releases, %.0f corrupt chunks, %.0f failed peer fetches",
		ms(p.Transfer), float64(p.ControllerSent)/float64(max(p.ReleaseBytes, 1)), p.Corrupt, p.Failures)
	return p, nil
}

// SetupEnv creates env, registers the application in src and writes a
// join token for n agents to token. An enrollment whose answer was lost
// is retried with the same key and answered again without using the
// token twice (auth.Service.Enroll), so n uses are enough.
func SetupEnv(ctx context.Context, c *localcluster.Cluster, env *cutoverv1.Environment, src, token string, n int) error {
	if _, err := c.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{Environment: env}); err != nil {
		return fmt.Errorf("create environment: %w", err)
	}
	if _, err := c.Admin.RegisterApplication(ctx, &cutoverv1.RegisterApplicationRequest{
		Application: &cutoverv1.Application{SourceDir: src}}); err != nil {
		return fmt.Errorf("register application: %w", err)
	}
	res, err := c.Admin.CreateJoinToken(ctx, &cutoverv1.CreateJoinTokenRequest{Environment: env.GetName(),
		Uses: int32(n), Ttl: durationpb.New(24 * time.Hour)})
	if err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	return os.WriteFile(token, []byte(res.GetToken()+"\n"), 0o600)
}
