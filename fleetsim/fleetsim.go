// Package fleetsim runs a fleet of simulated agents in one process, against
// a real controller, over the real protocol and real TLS. Each simulated
// agent is the real agent's parts (agent/identity, agent/store, agent/stage,
// agent/activate, agent/session) with a process supervisor that runs
// nothing (noProcesses): it enrolls with a join token, keeps its own gRPC
// connection and session, stages releases into its own bbolt store and
// root, and swaps `current` in stage 2. Only the app is missing.
//
// Layout under Config.DataDir, per agent:
//
//	<name>/tls/    its identity (agent.pem, ca.crt), as agent/identity keeps it
//	<name>/data/   its store (agent.db)
//	<name>/root/   its --root (ROOT/<app>/releases/, ROOT/<app>/current)
//
// Per-agent costs in one process: a few goroutines (the connection's
// reader and keepalive, the session, the certificate renewal), one TLS
// handshake to enroll and one to connect (Start runs StartConcurrency
// agents' starts at a time so that they do not all arrive at once), two
// open files (the connection, the bbolt file: RaiseFileLimit) and a bbolt
// mmap of the file's size (tens of KiB for a few-KiB release).
//
// With Config.Peers, each agent also serves peers (agent/peer) on a
// loopback port of its own and stages through agent/peer's source, as
// cutover-agent --peer-listen does: the peer figures F4–F6 use it.
//
// cmd/cutover-fleetsim runs it; internal/fleetbench measures the controller with it.
package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cutover-dev/cutover/agent/peer"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/poll"
)

// DefaultStartConcurrency is how many agents start (enroll and connect) at once.
const DefaultStartConcurrency = 50

// Config configures a simulated fleet.
type Config struct {
	// Controller is the controller's gRPC address.
	Controller string
	// Environment is the environment every agent serves.
	Environment string
	// Agents is how many agents to run.
	Agents int
	// JoinTokenFile holds a join token with at least Agents uses (once
	// enrolled, an agent's identity in DataDir is used instead).
	JoinTokenFile string
	// CAFile, if set, is the controller's CA certificate.
	CAFile string
	// NamePrefix starts every agent's name, followed by its number
	// (%05d from 0); default "sim-". Several simulators that share a
	// controller and an environment need different prefixes.
	NamePrefix string
	// DataDir holds one directory per agent (required).
	DataDir string
	// Labels go into every agent's hello.
	Labels map[string]string
	// StartConcurrency is how many agents start at once (default
	// DefaultStartConcurrency).
	StartConcurrency int
	// StageConcurrency, if positive, is how many agents of this process
	// stage at once; the others' stage commands wait for a turn. 0: no
	// limit. Thousands of agents staging at once in one process keep its
	// CPUs so busy that their connections' keepalive pings go unanswered
	// for seconds and the connections are cut: a simulator artefact,
	// since each real agent has a machine of its own.
	StageConcurrency int
	// Log receives the agents' logs; nil: discarded.
	Log *slog.Logger
	// Peers makes every agent serve what it holds and stages to the
	// others on a loopback port of its own, as cutover-agent
	// --peer-listen does, and fetch through agent/peer's source.
	Peers bool
	// WrapHeld, if set (with Peers), wraps what agent name's peer server
	// serves from: a benchmark injects a peer's faults there.
	WrapHeld func(name string, h peer.Held) peer.Held
}

// Sim is a running simulated fleet.
type Sim struct {
	cfg     Config
	agents  []*agent
	started atomic.Int64
	stages  chan struct{} // with StageConcurrency: one token per stage running
}

// New checks cfg and returns a Sim; Run starts its agents. Errors are
// errkind.InvalidArgument.
func New(cfg Config) (*Sim, error) {
	if cfg.NamePrefix == "" {
		cfg.NamePrefix = "sim-"
	}
	if cfg.StartConcurrency <= 0 {
		cfg.StartConcurrency = DefaultStartConcurrency
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	var problems []error
	if cfg.Controller == "" {
		problems = append(problems, errors.New("a controller address is required"))
	}
	if err := appspec.ValidName(cfg.Environment); err != nil {
		problems = append(problems, fmt.Errorf("environment: %w", err))
	}
	if cfg.Agents <= 0 {
		problems = append(problems, fmt.Errorf("agents: %d, want at least 1", cfg.Agents))
	}
	if cfg.DataDir == "" {
		problems = append(problems, errors.New("a data dir is required"))
	}
	if err := appspec.ValidName(Name(cfg.NamePrefix, cfg.Agents-1)); cfg.Agents > 0 && err != nil {
		problems = append(problems, fmt.Errorf("name prefix %q: %w", cfg.NamePrefix, err))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("fleetsim: %w: %w", errors.Join(problems...), errkind.InvalidArgument)
	}
	s := &Sim{cfg: cfg, agents: make([]*agent, cfg.Agents)}
	if cfg.StageConcurrency > 0 {
		s.stages = make(chan struct{}, cfg.StageConcurrency)
	}
	for i := range s.agents {
		s.agents[i] = newAgent(&s.cfg, Name(cfg.NamePrefix, i), s.stages)
	}
	return s, nil
}

// Name is the name of agent i of a simulator with prefix.
func Name(prefix string, i int) string { return fmt.Sprintf("%s%05d", prefix, i) }

// Names returns the names of the simulator's agents, in order.
func (s *Sim) Names() []string {
	names := make([]string, len(s.agents))
	for i, a := range s.agents {
		names[i] = a.name
	}
	return names
}

// Run starts the agents, StartConcurrency at a time, and runs them until
// ctx ends; then it closes them and returns nil. An agent that cannot
// start (a refused join token, a store that will not open) stops every
// agent and is Run's error.
func (s *Sim) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("fleetsim: create the data dir: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	slots := make(chan struct{}, s.cfg.StartConcurrency)
	defer func() { // after g.Wait: no agent runs
		for _, a := range s.agents {
			_ = a.close()
		}
	}()
	for _, a := range s.agents {
		select {
		case slots <- struct{}{}:
		case <-gctx.Done():
		}
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			err := a.start(gctx, &s.cfg)
			<-slots
			if err != nil {
				if gctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("start agent %s: %w", a.name, err)
			}
			s.started.Add(1)
			return a.run(gctx)
		})
	}
	err := g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Metric returns the value of counter or gauge name in agent i's own
// metrics (with Peers, each agent has a registry of its own: the stage and
// peer metrics); 0 if it has none.
func (s *Sim) Metric(i int, name string) float64 {
	if i < 0 || i >= len(s.agents) || s.agents[i].reg == nil {
		return 0
	}
	mfs, err := s.agents[i].reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var v float64
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return v
	}
	return 0
}

// Started returns how many agents have started (enrolled, store open,
// connection ready).
func (s *Sim) Started() int { return int(s.started.Load()) }

// Connected returns how many agents have a session open.
func (s *Sim) Connected() int {
	n := 0
	for _, a := range s.agents {
		if a.connected() {
			n++
		}
	}
	return n
}

// WaitConnected waits until every agent has a session open, or timeout.
func (s *Sim) WaitConnected(ctx context.Context, timeout time.Duration) error {
	return poll.Until(ctx, timeout, func() error {
		if n := s.Connected(); n < len(s.agents) {
			return fmt.Errorf("%d of %d agents connected (%d started)", n, len(s.agents), s.Started())
		}
		return nil
	})
}
