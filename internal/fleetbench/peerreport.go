package fleetbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Goals of the peer figures.
const (
	GoalControllerSent = 2.0 // F4, releases
	GoalPrepareRatio   = 2.5 // F5, N agents ÷ 1
	GoalRefetch        = 1.1 // F6, re-fetched ÷ owed
)

// PeerResult is the peer figures' runs, all with the same release, cap
// and fleet size.
type PeerResult struct {
	// One is the baseline of F5: one agent. On: every agent, peers on
	// (F4, F5, and F6's baseline); Off: peers off (F5's other column).
	One, On, Off PeerPoint
	// Killed and Corrupt: agent 0 killed or corrupting once it served a
	// third of what it served in On (F6).
	Killed, Corrupt PeerPoint
	// Failed holds, per run that did not complete, why.
	Failed map[string]error
}

// PeerSeries runs the peer figures' runs in turn, each with a fresh
// controller in its own subdirectory of cfg.Dir (cfg.PeersOff and
// cfg.Fault are ignored). A run that fails is recorded in
// PeerResult.Failed; only On's failure is PeerSeries' error (the others
// depend on it).
func PeerSeries(ctx context.Context, cfg PeerConfig) (*PeerResult, error) {
	res := &PeerResult{Failed: map[string]error{}}
	run := func(name string, agents int, off bool, fault Fault, after int64) PeerPoint {
		c := cfg
		c.Agents, c.PeersOff, c.Fault, c.FaultAfter = agents, off, fault, after
		c.Dir = filepath.Join(cfg.Dir, "peers-"+name)
		if cfg.SimDir != "" {
			c.SimDir = filepath.Join(cfg.SimDir, "peers-"+name)
			defer os.RemoveAll(c.SimDir)
		}
		if err := os.MkdirAll(c.Dir, 0o755); err != nil {
			res.Failed[name] = err
			return PeerPoint{}
		}
		p, err := MeasurePeers(ctx, c)
		if err != nil {
			res.Failed[name] = err
		}
		return p
	}
	res.On = run("on", cfg.Agents, false, NoFault, 0)
	if err := res.Failed["on"]; err != nil {
		return res, fmt.Errorf("%d agents, peers on: %w", cfg.Agents, err)
	}
	res.One = run("one", 1, false, NoFault, 0)
	res.Off = run("off", cfg.Agents, true, NoFault, 0)
	after := int64(res.On.Served[0] / 3)
	res.Killed = run("killed", cfg.Agents, false, Killed, after)
	res.Corrupt = run("corrupt", cfg.Agents, false, Corrupting, after)
	return res, nil
}

// Owed is what the faulty agent 0 did not deliver of what it delivered
// in the baseline run.
func (r *PeerResult) Owed(f PeerPoint) float64 { return r.On.Served[0] - delivered(f) }

// Refetched is what the other agents had to get from elsewhere than
// agent 0 beyond what they got from elsewhere in the baseline run.
func (r *PeerResult) Refetched(f PeerPoint) float64 {
	return (others(f) - delivered(f)) - (others(r.On) - r.On.Served[0])
}

// Wasted is what agent 0 sent in run f that was thrown away: the corrupt
// chunks its callers received before they dropped it.
func Wasted(f PeerPoint) float64 { return max(0, f.Served[0]-delivered(f)) }

// delivered is what agent 0 delivered intact in run p.
func delivered(p PeerPoint) float64 {
	if p.Fault == NoFault {
		return p.Served[0]
	}
	return min(p.Served[0], float64(p.FaultyGood))
}

// others is what the agents but agent 0 received in run p.
func others(p PeerPoint) float64 {
	var n float64
	for _, b := range p.Received[1:] {
		n += float64(b)
	}
	return n
}

// Table prints the peer figures with their same-run baselines and the
// machine's load after each run.
func (r *PeerResult) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "run\tagents\trelease\tctl sent\tF4 ÷ release\tstage 1 transfer\tF5 ÷ 1 agent\tpeers served\tcorrupt\tpeer failures\tCPU s ctl/agents\tstate\tload (1 5 15) / CPUs\t")
	row := func(name string, p PeerPoint) {
		if p.Agents == 0 || p.Received == nil {
			return
		}
		var served float64
		for _, s := range p.Served {
			served += s
		}
		ratio := 0.0
		if r.One.Transfer > 0 {
			ratio = float64(p.Transfer) / float64(r.One.Transfer)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%.2f\t%s\t%.2f\t%s\t%.0f\t%.0f\t%.1f/%.1f\t%s\t%s / %d\t\n", name, p.Agents, mib(p.ReleaseBytes),
			mib(p.ControllerSent), float64(p.ControllerSent)/float64(max(p.ReleaseBytes, 1)), ms(p.Transfer), ratio,
			mib(int64(served)), p.Corrupt, p.Failures, p.CPU, p.SimCPU, strings.TrimPrefix(p.State.String(), "DEPLOYMENT_STATE_"), p.Machine.LoadAvg, p.Machine.CPUs)
	}
	row("1 agent (F5 base)", r.One)
	row("peers on (F4, F5)", r.On)
	row("peers off (F5)", r.Off)
	row("owner killed (F6)", r.Killed)
	row("owner corrupting (F6)", r.Corrupt)
	_ = w.Flush()
	for _, f := range []PeerPoint{r.Killed, r.Corrupt} {
		if f.Received == nil {
			continue
		}
		owed, re, wasted := r.Owed(f), r.Refetched(f), Wasted(f)
		extra := float64(f.ControllerSent - r.On.ControllerSent)
		fmt.Fprintf(&b, "F6 %s: agent 0 owed %s (it served %s in the run without fault); the others re-fetched %s: %.3f (the controller sent %s more: %.2f); thrown away: %s of corrupt chunks (%.3f with them)\n",
			f.Fault, mib(int64(owed)), mib(int64(r.On.Served[0])), mib(int64(re)), re/owed, mib(int64(extra)), extra/owed, mib(int64(wasted)), (re+wasted)/owed)
	}
	for name, err := range r.Failed {
		fmt.Fprintf(&b, "run %q did not complete: %v\n", name, err)
	}
	fmt.Fprintf(&b, "goals: F4 ≤ %.0f releases; F5 ≤ %.1f (peers off ≈ the number of agents); F6 ≤ %.1f, deployment PREPARED\n",
		GoalControllerSent, GoalPrepareRatio, GoalRefetch)
	return b.String()
}
