// Package bench measures release transfer end to end, with the real
// controller and agents on loopback (internal/localcluster), on data it generates
// itself (seeded random files). It prints each figure of issue 3's table
// with its ratio, and the baselines measured in the same run: raw loopback
// TCP for the goodput, the agent's store alone for the ingest rate.
//
// Run it with `make bench` (cmd/cutover-bench holds only the flags).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Config is one benchmark run.
type Config struct {
	// BinDir holds cutover-controller and cutover-agent (built without -race).
	BinDir string
	// Dir is an empty directory for the data, the stores and the logs.
	Dir string
	// Size is the size of the release in bytes (the figure: 1 GiB).
	Size int64
	// Agents is how many agents stage at once for the many-agents figure.
	Agents int
	// Seed seeds the generated data.
	Seed uint64
	// LatencyStageRate is the latency figure's environments' stage_rate
	// (bytes per second; 0: none), to measure what the cap buys.
	LatencyStageRate int64
	// NoLatency leaves out figure (c) of issue 12 (the served app's
	// latency during a prepare), the longest step, when iterating on the
	// others.
	NoLatency bool
	// V2Reps is how many v2 prepares (each with 1% of the files changed
	// again) and rsyncs figure (b) of issue 12 takes the median of; 0: 1.
	V2Reps int
	// ProfileDir, when set, receives CPU profiles and execution traces of
	// the controller and of one agent during the prepares of figures (a)
	// and (b) of issue 12 (the first release and the v2 to many agents).
	ProfileDir string
	// Log receives a line per step; nil: discarded.
	Log io.Writer
}

// deployDeadline bounds the wait for one deployment.
const deployDeadline = 10 * time.Minute

// Run runs the benchmark and returns its figures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Agents <= 0 {
		cfg.Agents = 10
	}
	r := &run{cfg: cfg, res: &Result{Size: cfg.Size, Agents: cfg.Agents}}
	return r.res, r.run(ctx)
}

type run struct {
	cfg Config
	res *Result
	c   *localcluster.Cluster
	src string
}

func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (r *run) run(ctx context.Context) (err error) {
	r.src = filepath.Join(r.cfg.Dir, "src")
	r.say("generating %s of seeded random data in %s", formatBytes(r.cfg.Size), r.src)
	if err := Generate(r.src, r.cfg.Size, r.cfg.Seed); err != nil {
		return fmt.Errorf("generate data: %w", err)
	}
	files, err := dataFiles(r.src)
	if err != nil {
		return err
	}
	r.say("baseline: raw TCP on loopback")
	if r.res.RawTCP, err = rawTCP(files); err != nil {
		return fmt.Errorf("raw TCP baseline: %w", err)
	}
	r.say("baseline: durable disk write of the same bytes (fsync every %d MiB)", diskSyncEvery>>20)
	if r.res.Disk, err = diskWrite(filepath.Join(r.cfg.Dir, "disk-only"), files); err != nil {
		return fmt.Errorf("disk baseline: %w", err)
	}
	_ = os.RemoveAll(filepath.Join(r.cfg.Dir, "disk-only"))
	r.say("baseline: bbolt alone, %d chunks per transaction", storeOnlyBatch)
	if r.res.StoreOnly, err = storeOnly(filepath.Join(r.cfg.Dir, "store-only"), files); err != nil {
		return fmt.Errorf("store baseline: %w", err)
	}
	_ = os.RemoveAll(filepath.Join(r.cfg.Dir, "store-only"))

	// The generated source lives outside the controller's data dir: it is
	// the controller's source root.
	r.c, err = localcluster.Start(ctx, localcluster.Config{BinDir: r.cfg.BinDir, Dir: r.cfg.Dir,
		ControllerArgs: []string{"--source-root", r.src}, Pprof: r.cfg.ProfileDir != ""})
	defer func() {
		if r.c != nil {
			r.c.Close()
		}
	}()
	if err != nil {
		return fmt.Errorf("start controller: %w", err)
	}
	for _, env := range []struct {
		name     string
		twoStage bool
		rate     int64
	}{
		{"solo", false, 0},
		// The resume figure counts bytes, not time: a stage capped to last
		// about 4 s leaves time to see it half way (progress is shown every
		// 250 ms) and to kill the agent there.
		{"resume", true, max(r.cfg.Size/4, 1<<20)},
		{"many", true, 0},
	} {
		if _, err := r.c.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{
			Environment: &cutoverv1.Environment{Name: env.name, TwoStage: env.twoStage, StageRate: env.rate}}); err != nil {
			return fmt.Errorf("create environment %s: %w", env.name, err)
		}
	}
	if _, err := r.c.Admin.RegisterApplication(ctx, &cutoverv1.RegisterApplicationRequest{
		Application: &cutoverv1.Application{SourceDir: r.src}}); err != nil {
		return fmt.Errorf("register application: %w", err)
	}
	steps := []func(context.Context) error{r.solo, r.changed, r.unchanged, r.resume, r.many, r.rsyncFigures}
	if !r.cfg.NoLatency {
		steps = append(steps, r.latency)
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// solo stages v1 to one fresh agent: goodput, ingest rate, peak RSS.
func (r *run) solo(ctx context.Context) error {
	if err := r.c.StartAgents(ctx, "solo", "solo-1"); err != nil {
		return err
	}
	a := r.c.Agents[len(r.c.Agents)-1]
	before, err := r.ingest(a)
	if err != nil {
		return err
	}
	r.say("stage 1 of v1 to one agent")
	d, err := r.deploy(ctx, "solo", "v1", false)
	if err != nil {
		return err
	}
	r.res.Solo = d.GetTransferDuration().AsDuration()
	r.res.SoloBytes = d.GetAgents()[0].GetReleaseBytes()
	after, err := r.ingest(a)
	if err != nil {
		return err
	}
	if secs := after.seconds - before.seconds; secs > 0 {
		r.res.Ingest = (after.bytes - before.bytes) / secs
	}
	r.res.PeakRSS, err = PeakRSS(a.Proc.Pid())
	return err
}

// changed deploys v2, with 1% of the bytes changed in 10 places.
func (r *run) changed(ctx context.Context) error {
	if err := mutate(r.src, r.cfg.Size, 0.01, 10, r.cfg.Seed); err != nil {
		return fmt.Errorf("change the data: %w", err)
	}
	r.say("v2: 1%% of the bytes changed in 10 places")
	var err error
	r.res.ChangedSent, r.res.ChangedSize, err = r.sent(ctx, "solo", "v2")
	return err
}

// unchanged deploys v2 again.
func (r *run) unchanged(ctx context.Context) error {
	r.say("v2 again, unchanged")
	var err error
	r.res.UnchangedSent, r.res.UnchangedSize, err = r.sent(ctx, "solo", "v2-again")
	return err
}

// sent deploys the source to env and returns the bytes the controller sent
// for it and the release size.
func (r *run) sent(ctx context.Context, env, label string) (int64, int64, error) {
	before, err := r.transferred(env)
	if err != nil {
		return 0, 0, err
	}
	d, err := r.deploy(ctx, env, label, false)
	if err != nil {
		return 0, 0, err
	}
	after, err := r.transferred(env)
	return after - before, d.GetAgents()[0].GetReleaseBytes(), err
}

// resume prepares v2 on a fresh agent, kills it with SIGKILL once half of
// the release has arrived, restarts it, and compares what was sent after
// the restart with what was still missing.
func (r *run) resume(ctx context.Context) error {
	if err := r.c.StartAgents(ctx, "resume", "resume-1"); err != nil {
		return err
	}
	a := r.c.Agents[len(r.c.Agents)-1]
	r.say("stage 1 to a fresh agent, killed with SIGKILL at 50%% and restarted")
	id, err := r.create(ctx, "resume", "v2-resume")
	if err != nil {
		return err
	}
	if _, err := r.c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		return fmt.Errorf("prepare %s: %w", id, err)
	}
	var release string
	err = poll.Until(ctx, deployDeadline, func() error {
		d, err := r.c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil {
			return err
		}
		if d.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING {
			return poll.Permanent(fmt.Errorf("deployment %s is %s before the agent got half of it", id, d.GetState()))
		}
		ag := d.GetAgents()
		if len(ag) != 1 || ag[0].GetReleaseBytes() == 0 || ag[0].GetTransferredBytes() < ag[0].GetReleaseBytes()/2 {
			return errors.New("not half way yet")
		}
		release = d.GetApplications()[0].GetReleaseId()
		return nil
	})
	if err != nil {
		return fmt.Errorf("wait for half of the transfer: %w", err)
	}
	a.Proc.Kill()
	killed, err := r.transferred("resume")
	if err != nil {
		return err
	}
	if r.res.ResumeMissing, err = MissingBytes(a.DataDir, release); err != nil {
		return err
	}
	if err := r.c.RestartAgent(ctx, a, "resume"); err != nil {
		return err
	}
	if _, err := r.wait(ctx, id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED); err != nil {
		return err
	}
	end, err := r.transferred("resume")
	r.res.ResumeSent = end - killed
	return err
}

// MissingBytes opens the store of a stopped agent and sums the sizes of the
// distinct chunks of release (of AppName) that it does not hold
// (stage.Held: its staged releases and the chunks of those it is staging
// that are written and recorded).
func MissingBytes(dataDir, release string) (int64, error) {
	s, err := store.Open(dataDir)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	held, err := stage.Held(s)
	if err != nil {
		return 0, err
	}
	var missing int64
	err = s.View(func(tx *store.Tx) error {
		rec, err := tx.Release(AppName, release)
		if err != nil {
			return err
		}
		m, err := manifest.Decode(rec.Manifest)
		if err != nil {
			return err
		}
		seen := map[manifest.ChunkID]bool{}
		for _, f := range m.Files {
			for _, c := range f.Chunks {
				if !seen[c.ID] && !held[c.ID] {
					missing += c.Size
				}
				seen[c.ID] = true
			}
		}
		return nil
	})
	return missing, err
}

// many prepares the release on cfg.Agents fresh agents at once.
func (r *run) many(ctx context.Context) error {
	names := make([]string, r.cfg.Agents)
	for i := range names {
		names[i] = fmt.Sprintf("many-%d", i+1)
	}
	if err := r.c.StartAgents(ctx, "many", names...); err != nil {
		return err
	}
	r.say("stage 1 to %d agents at once", r.cfg.Agents)
	var d *cutoverv1.Deployment
	err := r.profile(ctx, "first", names[0], max(4, int(r.cfg.Size>>25)), func() (err error) {
		d, err = r.deploy(ctx, "many", "v2-many", true)
		return err
	})
	if err != nil {
		return err
	}
	r.res.Many = d.GetTransferDuration().AsDuration()
	if r.res.ManySent, err = r.transferred("many"); err != nil {
		return err
	}
	return r.continueMany(ctx, d.GetId())
}

// continueMany runs stage 2 of the deployment prepared on the many agents
// and times it: on the controller (activate_time to finish_time) and as the
// operator sees it (from the ContinueDeployment call until GetDeployment
// shows DEPLOYED, polled every poll.Every).
func (r *run) continueMany(ctx context.Context, id string) error {
	r.say("stage 2 (continue) on %d agents", r.cfg.Agents)
	start := time.Now()
	if _, err := r.c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: id}); err != nil {
		return fmt.Errorf("continue %s: %w", id, err)
	}
	d, err := r.wait(ctx, id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
	if err != nil {
		return err
	}
	r.res.ContinueWall = time.Since(start)
	r.res.Stage2 = d.GetFinishTime().AsTime().Sub(d.GetActivateTime().AsTime())
	r.res.Spread = d.GetActivationSpread().AsDuration()
	r.res.Arm, r.res.Swap = d.GetArmDuration().AsDuration(), d.GetSwapDuration().AsDuration()
	return nil
}

// create creates a deployment of the benchmark app to env.
func (r *run) create(ctx context.Context, env, label string) (string, error) {
	d, err := r.c.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: env,
		Applications: []*cutoverv1.ApplicationVersion{{Name: AppName, VersionLabel: label}}})
	if err != nil {
		return "", fmt.Errorf("create deployment to %s: %w", env, err)
	}
	return d.GetId(), nil
}

// deploy starts (or, with prepareOnly, prepares) a deployment of the source
// to env and waits until it is DEPLOYED (or PREPARED).
func (r *run) deploy(ctx context.Context, env, label string, prepareOnly bool) (*cutoverv1.Deployment, error) {
	id, err := r.create(ctx, env, label)
	if err != nil {
		return nil, err
	}
	want := cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED
	if prepareOnly {
		want = cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED
		_, err = r.c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id})
	} else {
		_, err = r.c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: id})
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	return r.wait(ctx, id, want)
}

// wait polls deployment id until it is in want; any other final state fails.
func (r *run) wait(ctx context.Context, id string, want cutoverv1.DeploymentState) (*cutoverv1.Deployment, error) {
	var d *cutoverv1.Deployment
	err := poll.Until(ctx, deployDeadline, func() error {
		var err error
		if d, err = r.c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id}); err != nil {
			return err
		}
		switch d.GetState() {
		case want:
			return nil
		case cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING,
			cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED:
			return fmt.Errorf("deployment %s is still %s", id, d.GetState())
		}
		return poll.Permanent(fmt.Errorf("deployment %s ended %s: %s", id, d.GetState(), d.GetError()))
	})
	return d, err
}

// transferred returns the controller's count of bytes sent to env's agents.
func (r *run) transferred(env string) (int64, error) {
	v, err := Metric(r.c.ControllerMetricsAddr, "cutover_transfer_bytes_total", map[string]string{"environment": env})
	return int64(v), err
}

type ingestCount struct{ bytes, seconds float64 }

// ingest returns an agent's counts of chunk bytes committed and of the
// seconds spent fetching them.
func (r *run) ingest(a *localcluster.Agent) (ingestCount, error) {
	b, err := Metric(a.MetricsAddr, "cutover_agent_fetched_bytes_total", nil)
	if err != nil {
		return ingestCount{}, err
	}
	s, err := Metric(a.MetricsAddr, "cutover_agent_fetch_seconds_total", nil)
	return ingestCount{bytes: b, seconds: s}, err
}
