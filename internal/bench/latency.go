package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Load settings of the latency figure.
const (
	loadClients  = 8
	loadRate     = 400 // requests per second in all
	latencyPairs = 3
	loadWarmUp   = 3 * time.Second
)

// LatencyPair is one pair of the latency figure: the served app's
// latencies during a prepare to the front-end's agent, then for as long
// without one, with the load average before and after.
type LatencyPair struct {
	With, Without LatencyStats
	// LoadBefore and LoadAfter are /proc/loadavg's three figures.
	LoadBefore, LoadAfter string
}

// Ratio is the pair's p99 with ÷ without.
func (p LatencyPair) Ratio() float64 {
	if p.Without.P99 == 0 {
		return 0
	}
	return float64(p.With.P99) / float64(p.Without.P99)
}

// latency measures (c): the served app's latency while one fresh agent
// (the front-end the app runs on) prepares the release, then for as long
// without a prepare, latencyPairs times. The controller stands for another
// machine: lowered and, with 2 CPUs or more, pinned to the last CPU while
// this process (the app and its load) and the agent are pinned to the
// others (see placement_linux.go; r.res.Placement says what was done).
func (r *run) latency(ctx context.Context) error {
	names := make([]string, latencyPairs)
	for i := range names {
		names[i] = fmt.Sprintf("latency-%d", i+1)
		if _, err := r.c.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{
			Environment: &cutoverv1.Environment{Name: names[i], TwoStage: true, StageRate: r.cfg.LatencyStageRate}}); err != nil {
			return fmt.Errorf("create environment %s: %w", names[i], err)
		}
	}
	frontEnd, restore := r.placeController()
	defer restore()
	load, err := StartLoad(loadClients, loadRate)
	if err != nil {
		return err
	}
	defer load.Close()
	// Steady load: the app and its clients warm up (connections, heap,
	// caches) before the first pair, whose "with" side would otherwise
	// count the app's own start.
	r.say("latency: %s of load before the first pair (warm-up, not counted)", loadWarmUp)
	warm := time.NewTimer(loadWarmUp)
	select {
	case <-ctx.Done():
		warm.Stop()
		return ctx.Err()
	case <-warm.C:
	}
	var with, without []time.Duration
	for i, env := range names {
		if err := r.c.StartAgents(ctx, env, env); err != nil {
			return err
		}
		if frontEnd != nil {
			if err := pinProcess(r.c.Agents[len(r.c.Agents)-1].Proc.Pid(), frontEnd); err != nil {
				return err
			}
		}
		pair := LatencyPair{LoadBefore: loadAverage()}
		r.say("latency pair %d/%d: %d clients at %d req/s, during a prepare of %s to the front-end's agent, then as long without (load average %s)",
			i+1, len(names), loadClients, loadRate, formatBytes(r.cfg.Size), pair.LoadBefore)
		start := time.Now()
		if _, err := r.deploy(ctx, env, "v3-"+env, true); err != nil {
			return err
		}
		mid := time.Now()
		t := time.NewTimer(mid.Sub(start))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		w, wo := load.Between(start, mid), load.Between(mid, mid.Add(mid.Sub(start)))
		pair.With, pair.Without, pair.LoadAfter = stats(w), stats(wo), loadAverage()
		r.res.LatencyPairs = append(r.res.LatencyPairs, pair)
		r.say("  p99 %s ÷ %s = %.2f (p50 %s ÷ %s; load average %s)", pair.With.P99, pair.Without.P99, pair.Ratio(), pair.With.P50, pair.Without.P50, pair.LoadAfter)
		with, without = append(with, w...), append(without, wo...)
	}
	r.res.LatencyWith, r.res.LatencyWithout = stats(with), stats(without)
	return nil
}

// placeController lowers the controller and, with 2 CPUs or more, pins it
// to the last CPU and this process to the others, which it returns (the
// front-end's CPUs, for the agent; nil: not pinned). restore gives this
// process all its CPUs back. What it did goes to r.res.Placement.
func (r *run) placeController() (frontEnd []int, restore func()) {
	restore = func() {}
	pid := r.c.Controller.Pid()
	place := "controller at nice 19, I/O class idle"
	if err := lowerProcess(pid); err != nil {
		place = fmt.Sprintf("controller not lowered (%v)", err)
	}
	cpus := onlineCPUs()
	if len(cpus) >= 2 {
		last, rest := cpus[len(cpus)-1:], cpus[:len(cpus)-1]
		errC, errF := pinProcess(pid, last), pinProcess(os.Getpid(), rest)
		if errC == nil && errF == nil {
			frontEnd = rest
			restore = func() { _ = pinProcess(os.Getpid(), cpus) }
			place += fmt.Sprintf(", pinned to CPU %v; the app, its load and the staging agent on CPU %v", last, rest)
		} else {
			place += fmt.Sprintf(", not pinned (%v, %v)", errC, errF)
		}
	}
	r.res.Placement = fmt.Sprintf("%s (%d CPUs, GOMAXPROCS %d)", place, len(cpus), runtime.GOMAXPROCS(0))
	if rate := r.cfg.LatencyStageRate; rate > 0 {
		r.res.Placement += fmt.Sprintf("; the prepares capped by the environment's stage_rate at %s/s", formatBytes(rate))
	}
	r.say("latency placement: %s", r.res.Placement)
	return frontEnd, restore
}

// stats summarises lat.
func stats(lat []time.Duration) LatencyStats {
	return LatencyStats{P50: Percentile(lat, 50), P99: Percentile(lat, 99), N: len(lat)}
}

// medianRatio is the median of the pairs' p99 ratios (0 without pairs).
func medianRatio(pairs []LatencyPair) float64 { return medianBy(pairs, LatencyPair.Ratio) }

// medianBy returns the median of ratio over pairs (0 if none).
func medianBy[P any](pairs []P, ratio func(P) float64) float64 {
	if len(pairs) == 0 {
		return 0
	}
	r := make([]float64, len(pairs))
	for i, p := range pairs {
		r[i] = ratio(p)
	}
	slices.Sort(r)
	if n := len(r); n%2 == 0 {
		return (r[n/2-1] + r[n/2]) / 2
	}
	return r[len(r)/2]
}
