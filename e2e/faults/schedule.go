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
	// HangAgent is SIGSTOP of an agent during stage 2 for HangDown, longer
	// than keepalive and than a stage 2 step may take: stage 2 must end
	// (ROLLED_BACK or FAILED) while the agent stays stopped (issue 14).
	HangAgent Kind = "hang-agent"
	// DiskFull fills the file system of an agent's data dir and root (a
	// tmpfs of its own) for Down. Needs the right to mount a tmpfs.
	DiskFull Kind = "disk-full"
	// HangHook makes the before_activate hook block for Down (5–25 s),
	// longer than the hooks deadline or not.
	HangHook Kind = "hang-hook"
	// DatabaseDown takes the environment's database away for Down (its
	// directory renamed: SQLite cannot open it), then brings it back.
	DatabaseDown Kind = "database-down"
)

// AllKinds lists every kind, in a fixed order.
var AllKinds = []Kind{KillController, KillAgent, StopController, StopAgent, HangAgent, CutNetwork, SlowNetwork, DiskFull, HangHook, DatabaseDown}

// HangDown is how long HangAgent keeps the agent stopped.
const HangDown = 60 * time.Second

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

// Phase is a point of a deployment a fault is anchored to.
type Phase string

// The phases a fault may follow.
const (
	// Stage1 begins when prepare (or start) is acknowledged.
	Stage1 Phase = "stage1"
	// Stage2 begins when continue is acknowledged (or, for a single stage
	// start, when the deployment is first seen ACTIVATING).
	Stage2 Phase = "stage2"
	// Rollback begins when the rollback is acknowledged.
	Rollback Phase = "rollback"
)

// Fault is one entry of a schedule. Faults happen one after the other, in
// order: each waits for its phase to begin, and for the previous fault to
// be over, then for Delay.
type Fault struct {
	// Step is the index of the deployment whose phase it follows.
	Step int
	// Phase is the point of that deployment it follows.
	Phase Phase
	// Delay is the pause after the phase began (or after the previous
	// fault, if that ended later).
	Delay time.Duration
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
	s := fmt.Sprintf("deployment %d %s +%s: %s", f.Step+1, f.Phase, f.Delay.Round(time.Millisecond), f.Kind)
	switch f.Kind {
	case KillAgent, StopAgent, HangAgent, DiskFull:
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
		} else if i > 0 { // the first has nothing to go back to
			s.Rollback = rng.IntN(3) == 0
		}
		p.Steps = append(p.Steps, s)
	}
	nf := 2 + rng.IntN(max(1, maxFaults-1))
	for range nf {
		f := Fault{Step: rng.IntN(n), Kind: kinds[rng.IntN(len(kinds))], Agent: rng.IntN(agents)}
		phases := []Phase{Stage1, Stage2}
		switch st := p.Steps[f.Step]; {
		case st.PrepareOnly:
			phases = phases[:1]
		case st.Rollback:
			phases = append(phases, Rollback)
		}
		f.Phase = phases[rng.IntN(len(phases))]
		if f.Kind == HangAgent && p.Steps[f.Step].PrepareOnly {
			f.Kind = StopAgent // no stage 2 to hang in
		} else if f.Kind == HangHook && p.Steps[f.Step].PrepareOnly {
			f.Kind = CutNetwork // no hook runs in a prepare only
		} else if f.Kind == HangAgent || f.Kind == HangHook {
			f.Phase = Stage2
		}
		switch f.Phase {
		case Stage1: // build and transfer: seconds
			f.Delay = time.Duration(rng.IntN(3000)) * time.Millisecond
		default: // arm, hooks (a second), SQL, swap
			f.Delay = time.Duration(rng.IntN(1500)) * time.Millisecond
		}
		if f.Kind == HangAgent { // while the before_activate hook runs, or about
			f.Delay = time.Duration(rng.IntN(800)) * time.Millisecond
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
		case HangAgent:
			f.Down = HangDown
		case HangHook:
			f.Down = time.Duration(5000+rng.IntN(20000)) * time.Millisecond
		case DatabaseDown:
			f.Down = time.Duration(1000+rng.IntN(6000)) * time.Millisecond
		}
		p.Faults = append(p.Faults, f)
	}
	// In the order of the deployments and their phases.
	order := map[Phase]int{Stage1: 0, Stage2: 1, Rollback: 2}
	slices.SortStableFunc(p.Faults, func(a, b Fault) int {
		if a.Step != b.Step {
			return a.Step - b.Step
		}
		return order[a.Phase] - order[b.Phase]
	})
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
