package faults

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The kinds of fault the injector picks from.
const (
	// KillController is kill -9 of the controller, down for Down, then started again.
	KillController Kind = "kill-controller"
	// KillAgent is kill -9 of an agent and its apps (a machine crash),
	// down for Down, then started again.
	KillAgent Kind = "kill-agent"
	// StopController is SIGSTOP of the controller for Down, then SIGCONT.
	StopController Kind = "stop-controller"
	// StopAgent is SIGSTOP of an agent (its apps run on) for Down, then SIGCONT.
	StopAgent Kind = "stop-agent"
	// CutNetwork closes every agent connection at the proxy and refuses
	// new ones for Down.
	CutNetwork Kind = "cut-network"
	// SlowNetwork delays every byte between agents and controller by
	// LatencyMs (± a quarter) for Down.
	SlowNetwork Kind = "slow-network"
	// DiskFull fills the file system of an agent's data dir and root (a
	// tmpfs of its own) for Down. Needs the right to mount a tmpfs.
	DiskFull Kind = "disk-full"
)

// AllKinds lists every kind, in a fixed order.
var AllKinds = []Kind{KillController, KillAgent, StopController, StopAgent, CutNetwork, SlowNetwork, DiskFull}

// ParseKinds reads a comma-separated list of kinds; "all" is AllKinds.
func ParseKinds(s string) ([]Kind, error) {
	if s == "all" {
		return slices.Clone(AllKinds), nil
	}
	var out []Kind
	for _, f := range strings.Split(s, ",") {
		k := Kind(strings.TrimSpace(f))
		if !slices.Contains(AllKinds, k) {
			return nil, fmt.Errorf("unknown fault kind %q (kinds: %v, or all)", f, AllKinds)
		}
		out = append(out, k)
	}
	return out, nil
}

// Fault is one entry of a schedule.
type Fault struct {
	// After is the pause before the fault, counted from the end of the
	// previous one (or from the start of the first deployment).
	After time.Duration
	// Kind is what happens.
	Kind Kind
	// Agent is the index of the agent it hits (agent kinds).
	Agent int
	// Down is how long the process stays down or stopped, the network cut
	// or slow, the disk full.
	Down time.Duration
	// LatencyMs is SlowNetwork's delay.
	LatencyMs int
}

func (f Fault) String() string {
	s := fmt.Sprintf("+%s %s", f.After.Round(time.Millisecond), f.Kind)
	switch f.Kind {
	case KillAgent, StopAgent, DiskFull:
		s += fmt.Sprintf(" fe-%d", f.Agent+1)
	}
	s += fmt.Sprintf(" for %s", f.Down.Round(time.Millisecond))
	if f.Kind == SlowNetwork {
		s += fmt.Sprintf(" at %dms", f.LatencyMs)
	}
	return s
}

// Step is one deployment of a plan.
type Step struct {
	// Version is the version label, also the app's VERSION.
	Version string
	// Single deploys with StartDeployment instead of prepare then continue.
	Single bool
	// PrepareOnly stops at PREPARED (the last step only).
	PrepareOnly bool
	// Rollback rolls the deployment back once DEPLOYED.
	Rollback bool
}

func (s Step) String() string {
	out := s.Version
	switch {
	case s.PrepareOnly:
		out += " prepare-only"
	case s.Single:
		out += " start"
	default:
		out += " prepare+continue"
	}
	if s.Rollback {
		out += "+rollback"
	}
	return out
}

// Plan is what one run does: its deployments and its faults, all drawn
// from its seed.
type Plan struct {
	Seed   uint64
	Steps  []Step
	Faults []Fault
}

// NewPlan draws a plan from seed: 1 to maxSteps deployments and 2 to
// maxFaults faults of the given kinds, hitting one of agents agents.
func NewPlan(seed uint64, kinds []Kind, agents, maxSteps, maxFaults int) Plan {
	rng := rand.New(rand.NewPCG(seed, 0x6661756c7473)) // "faults"
	p := Plan{Seed: seed}
	n := 1 + rng.IntN(maxSteps)
	for i := range n {
		s := Step{Version: fmt.Sprintf("v%d", i+1), Single: rng.IntN(4) == 0}
		if i == n-1 && n > 1 && rng.IntN(4) == 0 {
			s = Step{Version: s.Version, PrepareOnly: true}
		} else {
			s.Rollback = rng.IntN(4) == 0
		}
		p.Steps = append(p.Steps, s)
	}
	nf := 2 + rng.IntN(max(1, maxFaults-1))
	for range nf {
		f := Fault{
			After: time.Duration(300+rng.IntN(4000)) * time.Millisecond,
			Kind:  kinds[rng.IntN(len(kinds))],
			Agent: rng.IntN(agents),
		}
		switch f.Kind {
		case KillController, KillAgent:
			f.Down = time.Duration(rng.IntN(3000)) * time.Millisecond
		case StopController, StopAgent:
			f.Down = time.Duration(500+rng.IntN(7500)) * time.Millisecond // < 8 s
		case CutNetwork:
			f.Down = time.Duration(500+rng.IntN(6000)) * time.Millisecond
		case SlowNetwork:
			f.Down = time.Duration(2000+rng.IntN(8000)) * time.Millisecond
			f.LatencyMs = 50 + rng.IntN(750)
		case DiskFull:
			f.Down = time.Duration(1000+rng.IntN(5000)) * time.Millisecond
		}
		p.Faults = append(p.Faults, f)
	}
	return p
}

func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d\n  deployments:", p.Seed)
	for _, s := range p.Steps {
		fmt.Fprintf(&b, " [%s]", s)
	}
	b.WriteString("\n  faults:")
	for i, f := range p.Faults {
		fmt.Fprintf(&b, "\n    %d. %s", i+1, f)
	}
	return b.String()
}
