package fleetbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Goals of the figures.
const (
	GoalRSSPerAgent = 64 << 10    // F1, bytes
	GoalSpread      = time.Second // F2, at 10,000 agents
	GoalStage2Ratio = 3.0         // F3, 1,000 agents ÷ 10
)

// Result is a baseline run and one run per fleet size.
type Result struct {
	Baseline Point
	Points   []Point
	// Failed holds, per fleet size that did not complete, why.
	Failed map[int]error
}

// Series runs the baseline fleet size, then each of sizes, each with a
// fresh controller in its own subdirectory of cfg.Dir (cfg.Agents is
// ignored). A size that fails is recorded in Result.Failed and the larger
// ones are not tried; only the baseline's failure is Series' error.
func Series(ctx context.Context, cfg Config, baseline int, sizes []int) (*Result, error) {
	res := &Result{Failed: map[int]error{}}
	one := func(n int) (Point, error) {
		c := cfg
		c.Agents = n
		c.Dir = filepath.Join(cfg.Dir, fmt.Sprintf("n%d", n))
		if cfg.SimDir != "" {
			c.SimDir = filepath.Join(cfg.SimDir, fmt.Sprintf("n%d", n))
			defer os.RemoveAll(c.SimDir)
		}
		if err := os.MkdirAll(c.Dir, 0o755); err != nil {
			return Point{}, err
		}
		return Measure(ctx, c)
	}
	var err error
	if res.Baseline, err = one(baseline); err != nil {
		return res, fmt.Errorf("baseline (%d agents): %w", baseline, err)
	}
	for _, n := range sizes {
		p, err := one(n)
		if err != nil {
			res.Failed[n] = err
			break
		}
		res.Points = append(res.Points, p)
	}
	return res, nil
}

// Table prints one row per fleet size: the figures, their inputs and the
// machine's load when the run ended.
func (r *Result) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "agents\tconnect\tctl RSS 0→N\tF1 RSS/agent\tgoroutines\tprepare\tF3 stage 2\tF3 ÷ base\tF2 spread\tswap p99−first\tctl CPU s conn/prep/st2\tpeak RSS\tload (1 5 15) / CPUs\t")
	for _, p := range append([]Point{r.Baseline}, r.Points...) {
		ratio := 0.0 // stage 2 not measured (IdleOnly)
		if r.Baseline.Stage2 > 0 {
			ratio = float64(p.Stage2) / float64(r.Baseline.Stage2)
		}
		fmt.Fprintf(w, "%d\t%s\t%s→%s\t%s\t%.0f\t%s\t%s\t%.2f\t%s\t%s\t%.1f/%.1f/%.1f\t%s\t%s / %d\t\n",
			p.Agents, ms(p.Connect), mib(p.BaseRSS), mib(p.IdleRSS), kib(p.RSSPerAgent()), p.Goroutines,
			ms(p.Prepare), ms(p.Stage2), ratio, ms(p.Spread), ms(p.SwapP99),
			p.CPUConnect, p.CPUPrepare, p.CPUStage2, mib(p.PeakRSS), p.Machine.LoadAvg, p.Machine.CPUs)
	}
	_ = w.Flush()
	for n, err := range r.Failed {
		fmt.Fprintf(&b, "%d agents: did not complete: %v\n", n, err)
	}
	fmt.Fprintf(&b, "goals: F1 ≤ %s per agent; F2 ≤ %s at 10,000 agents; F3 ≤ %.0f at 1,000 agents (÷ %d agents)\n",
		kib(GoalRSSPerAgent), GoalSpread, GoalStage2Ratio, r.Baseline.Agents)
	return b.String()
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
func mib(n int64) string        { return fmt.Sprintf("%.0fMiB", float64(n)/(1<<20)) }
func kib(n int64) string        { return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10)) }
