package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/internal/probe"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// SwitchConfig is one run of the switch benchmark (issue 12): stage 2 of
// examples/listen on front-ends under a continuous probe, with run.listen
// (the agent hands the sockets over; the versions overlap) and without
// (the old process stops, then the new one listens), alternating.
type SwitchConfig struct {
	// BinDir holds cutover-controller, cutover-agent and listen (the built
	// examples/listen), built without -race.
	BinDir string
	// Dir is an empty directory for the data, the sources and the logs.
	Dir string
	// FrontEnds is the number of agents of each side (default 3).
	FrontEnds int
	// Reps is the number of continues of each side (default 10).
	Reps int
	// Log receives a line per step; nil: discarded.
	Log io.Writer
}

// SwitchSample is what one continue measured.
type SwitchSample struct {
	// Requests, Refused and Failed sum the probe's counts over the
	// front-ends, from the continue call until DEPLOYED was seen.
	Requests, Refused, Failed int
	// RefusedWindow and LongestGap are the longest of any front-end.
	RefusedWindow, LongestGap time.Duration
	// Spread is the deployment's activation_spread.
	Spread time.Duration
	// Stage2 is activate_time to finish_time, on the controller's clock.
	Stage2 time.Duration
	// Overlap is the longest DeploymentAgent.overlap (0 when none reported).
	Overlap time.Duration
}

// SwitchResult holds the samples of both sides, in order.
type SwitchResult struct {
	FrontEnds int
	// With are the continues of the app with run.listen; Without those of
	// the same app without.
	With, Without []SwitchSample
}

// switchSide is one environment, its agents, its app and its probe.
type switchSide struct {
	env, src string
	listen   bool
	probe    *probe.Probe
	samples  *[]SwitchSample
}

// RunSwitch runs the switch benchmark and returns its samples.
func RunSwitch(ctx context.Context, cfg SwitchConfig) (*SwitchResult, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.FrontEnds <= 0 {
		cfg.FrontEnds = 3
	}
	if cfg.Reps <= 0 {
		cfg.Reps = 10
	}
	res := &SwitchResult{FrontEnds: cfg.FrontEnds}
	say := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	c, err := localcluster.Start(ctx, localcluster.Config{BinDir: cfg.BinDir, Dir: cfg.Dir,
		ControllerArgs: []string{"--source-root", cfg.Dir}})
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("start controller: %w", err)
	}
	sides := []*switchSide{
		{env: "without", listen: false, samples: &res.Without},
		{env: "with", listen: true, samples: &res.With},
	}
	for _, s := range sides {
		if err := s.setUp(ctx, c, cfg, say); err != nil {
			return nil, err
		}
		defer s.probe.Stop()
	}
	for i := range cfg.Reps {
		for _, s := range sides {
			version := fmt.Sprintf("v%d", i+2)
			say("%s run.listen: continue %d of %d (%s)", s.env, i+1, cfg.Reps, version)
			sample, err := s.deploy(ctx, c, version)
			if err != nil {
				return nil, err
			}
			*s.samples = append(*s.samples, sample)
		}
	}
	return res, nil
}

// setUp creates the side's environment, agents and app, deploys v1 and
// starts its probe.
func (s *switchSide) setUp(ctx context.Context, c *localcluster.Cluster, cfg SwitchConfig, say func(string, ...any)) error {
	if _, err := c.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: s.env, TwoStage: true}}); err != nil {
		return fmt.Errorf("create environment %s: %w", s.env, err)
	}
	var names []string
	for i := range cfg.FrontEnds {
		names = append(names, fmt.Sprintf("%s-%d", s.env, i+1))
	}
	if err := c.StartAgents(ctx, s.env, names...); err != nil {
		return err
	}
	s.src = filepath.Join(cfg.Dir, "src-"+s.env)
	// The app is named after its environment.
	app := localcluster.ListenApp{Name: s.env, Binary: filepath.Join(cfg.BinDir, "listen"), Listen: s.listen, HealthURL: true}
	if err := app.Write(s.src, "v1"); err != nil {
		return err
	}
	if _, err := c.Admin.RegisterApplication(ctx, &cutoverv1.RegisterApplicationRequest{
		Application: &cutoverv1.Application{SourceDir: s.src}}); err != nil {
		return fmt.Errorf("register %s: %w", s.src, err)
	}
	say("%s run.listen: v1 on %d front-ends", s.env, cfg.FrontEnds)
	if _, err := s.twoStages(ctx, c, "v1"); err != nil {
		return err
	}
	var targets []probe.Target
	for _, a := range c.Agents {
		if a.Environment == s.env {
			targets = append(targets, a.ProbeTarget())
		}
	}
	s.probe = probe.Start(probe.Config{Targets: targets})
	return nil
}

// deploy prepares version, then continues it under the probe and returns
// what the continue measured.
func (s *switchSide) deploy(ctx context.Context, c *localcluster.Cluster, version string) (SwitchSample, error) {
	if err := localcluster.WriteVersion(s.src, version); err != nil {
		return SwitchSample{}, err
	}
	d, err := s.twoStages(ctx, c, version)
	if err != nil {
		return SwitchSample{}, err
	}
	r := s.probe.Cut() // from the continue call until DEPLOYED was seen
	sample := SwitchSample{Requests: r.Requests(), Refused: r.Refused(), Failed: r.Failed(),
		RefusedWindow: r.LongestRefusedWindow(), LongestGap: r.LongestGap(),
		Spread: d.GetActivationSpread().AsDuration(), Stage2: d.GetFinishTime().AsTime().Sub(d.GetActivateTime().AsTime())}
	for _, a := range d.GetAgents() {
		sample.Overlap = max(sample.Overlap, a.GetOverlap().AsDuration())
	}
	return sample, nil
}

// twoStages prepares version, cuts the probe's phase (when it runs) once
// PREPARED, continues and waits until DEPLOYED.
func (s *switchSide) twoStages(ctx context.Context, c *localcluster.Cluster, version string) (*cutoverv1.Deployment, error) {
	r := &run{c: c}
	d, err := c.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: s.env,
		Applications: []*cutoverv1.ApplicationVersion{{Name: s.env, VersionLabel: version}}})
	if err != nil {
		return nil, fmt.Errorf("create deployment to %s: %w", s.env, err)
	}
	id := d.GetId()
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", id, err)
	}
	if _, err := r.wait(ctx, id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED); err != nil {
		return nil, err
	}
	if s.probe != nil {
		s.probe.Cut() // stage 1 is not measured here
	}
	if _, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: id}); err != nil {
		return nil, fmt.Errorf("continue %s: %w", id, err)
	}
	return r.wait(ctx, id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
}

// median returns the median of the values of samples that f picks.
func median(samples []SwitchSample, f func(SwitchSample) time.Duration) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	v := make([]time.Duration, len(samples))
	for i, s := range samples {
		v[i] = f(s)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// total sums the counts of samples that f picks.
func total(samples []SwitchSample, f func(SwitchSample) int) int {
	n := 0
	for _, s := range samples {
		n += f(s)
	}
	return n
}

// Figures returns the table's rows: issue 12's figures.
func (r *SwitchResult) Figures() []Figure {
	lost := func(s SwitchSample) int { return s.Refused + s.Failed }
	requests := func(s SwitchSample) int { return s.Requests }
	stage2 := func(s SwitchSample) time.Duration { return s.Stage2 }
	spread := func(s SwitchSample) time.Duration { return s.Spread }
	withLost, withReq := total(r.With, lost), total(r.With, requests)
	withoutLost, withoutReq := total(r.Without, lost), total(r.Without, requests)
	var maxSpread time.Duration
	for _, s := range r.With {
		maxSpread = max(maxSpread, s.Spread)
	}
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	reps := len(r.With)
	f := []Figure{
		{Name: fmt.Sprintf("requests refused or failed during stage 2 with run.listen (%d continues, %d front-ends)", reps, r.FrontEnds),
			Measured: fmt.Sprintf("%d of %d (refused %d, failed %d)", withLost, withReq, total(r.With, func(s SwitchSample) int { return s.Refused }),
				total(r.With, func(s SwitchSample) int { return s.Failed })),
			Ratio: ratio(float64(withLost), float64(withReq)), Target: "0", OK: withLost == 0 && withReq > 0},
		{Name: "the same without run.listen (today's switch)",
			Measured: fmt.Sprintf("%d of %d (refused %d, failed %d); refused window median %s, longest gap median %s", withoutLost, withoutReq,
				total(r.Without, func(s SwitchSample) int { return s.Refused }), total(r.Without, func(s SwitchSample) int { return s.Failed }),
				ms(median(r.Without, func(s SwitchSample) time.Duration { return s.RefusedWindow })),
				ms(median(r.Without, func(s SwitchSample) time.Duration { return s.LongestGap }))),
			OK: true, Info: true},
		{Name: "activation spread with run.listen, first to last front-end (largest of the continues)",
			Measured: fmt.Sprintf("%s (median %s; without run.listen: median %s)", ms(maxSpread), ms(median(r.With, spread)), ms(median(r.Without, spread))),
			Ratio:    ratio(maxSpread.Seconds(), (50 * time.Millisecond).Seconds()), Target: "≤ 50 ms", OK: maxSpread <= 50*time.Millisecond},
		{Name: "stage 2 (activate → finish) with run.listen ÷ without, medians",
			Measured: fmt.Sprintf("%s ÷ %s", ms(median(r.With, stage2)), ms(median(r.Without, stage2))),
			Ratio:    ratio(median(r.With, stage2).Seconds(), median(r.Without, stage2).Seconds()), Target: "≤ 1.5"},
		{Name: "overlap of the two versions with run.listen (DeploymentAgent.overlap, median of the longest)",
			Measured: ms(median(r.With, func(s SwitchSample) time.Duration { return s.Overlap })), OK: true, Info: true},
	}
	f[3].OK = f[3].Ratio > 0 && f[3].Ratio <= 1.5
	return f
}

// Table renders the figures as a Markdown table.
func (r *SwitchResult) Table() string { return table(r.Figures()) }

// Samples renders every continue, one line each, in the order they ran.
func (r *SwitchResult) Samples() string {
	var out string
	for i := range max(len(r.With), len(r.Without)) {
		for _, side := range []struct {
			name    string
			samples []SwitchSample
		}{{"without", r.Without}, {"with", r.With}} {
			if i >= len(side.samples) {
				continue
			}
			s := side.samples[i]
			out += fmt.Sprintf("continue %d %-7s run.listen: %5d requests, %3d refused, %3d failed, refused window %7s, longest gap %7s, stage 2 %7s, spread %6s, overlap %6s\n",
				i+1, side.name, s.Requests, s.Refused, s.Failed, s.RefusedWindow.Round(time.Millisecond), s.LongestGap.Round(time.Millisecond),
				s.Stage2.Round(time.Millisecond), s.Spread.Round(time.Millisecond), s.Overlap.Round(time.Millisecond))
		}
	}
	return out
}

// OK reports whether every figure meets its target.
func (r *SwitchResult) OK() bool { return allOK(r.Figures()) }
