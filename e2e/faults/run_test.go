package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cutover-dev/cutover/e2e/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

const (
	// env is the environment every run deploys to.
	env = "faults"
	// app is the application: examples/hello.
	app = "hello"
	// finalBound bounds the wait for a deployment to reach a final state
	// (or PREPARED), faults included.
	finalBound = 3 * time.Minute
	// settleBound bounds the wait, after the last fault, for the fleet to
	// show what the deployments say.
	settleBound = time.Minute
	// callBound bounds the retries of one operator request while the
	// controller is down or stopped.
	callBound = 90 * time.Second
	// refusedBound bounds the retries of a request refused with
	// FAILED_PRECONDITION (agents not connected again yet, say).
	refusedBound = 45 * time.Second
	// tmpfsSize is the size of an agent's own file system (DiskFull).
	tmpfsSize = "1g"
)

var agentNames = []string{"fe-1", "fe-2", "fe-3"}

// tally counts over every run of the test binary.
var tally = struct {
	sync.Mutex
	runs       int
	faults     map[Kind]int
	violations []string
}{faults: map[Kind]int{}}

// TestFaults makes -runs runs, each drawn from its seed (-seed, -seed+1, …):
// a cluster, deployments, faults, then the invariants.
func TestFaults(t *testing.T) {
	kinds, err := ParseKinds(*kindsFlag)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(kinds, DiskFull) {
		if err := canMountTmpfs(); err != nil {
			t.Logf("no %s faults: %v", DiskFull, err)
			kinds = slices.DeleteFunc(kinds, func(k Kind) bool { return k == DiskFull })
		}
	}
	if len(kinds) == 0 {
		t.Fatal("no fault kind left to draw from")
	}
	start := time.Now()
	for i := range *runsFlag {
		plan := NewPlan(*seedFlag+uint64(i), kinds, len(agentNames), *stepsFlag, *faultsFlag)
		t.Run(fmt.Sprintf("seed=%d", plan.Seed), func(t *testing.T) {
			newRun(t, plan, slices.Contains(kinds, DiskFull)).do()
		})
	}
	tally.Lock()
	defer tally.Unlock()
	var byKind []string
	for _, k := range AllKinds {
		if n := tally.faults[k]; n > 0 {
			byKind = append(byKind, fmt.Sprintf("%s %d", k, n))
		}
	}
	t.Logf("%d runs in %s; faults injected: %s; invariant violations: %d",
		tally.runs, time.Since(start).Round(time.Second), strings.Join(byKind, ", "), len(tally.violations))
	for _, v := range tally.violations {
		t.Logf("  %s", v)
	}
}

// run is one run: its plan, its cluster, what it saw.
type run struct {
	t        *testing.T
	plan     Plan
	disk     bool // each agent on a tmpfs of its own
	dir      string
	src      string
	db       string
	hookLog  string
	c        *localcluster.Cluster
	proxy    *Proxy
	start    time.Time
	closed   bool
	listing  []string // the package directory (the processes' working directory) before the run
	injected []Fault

	mu         sync.Mutex
	events     []string
	violations []string
	deps       []*dep
	dangling   map[string]bool
	anchors    map[anchor]chan struct{} // closed when the phase begins
}

// anchor is a phase of one deployment of the plan.
type anchor struct {
	step  int
	phase Phase
}

// dep is one deployment the run made, and what the operator was told.
type dep struct {
	step     Step
	index    int    // 1-based
	id       string // acknowledged by CreateDeployment
	acked    []cutoverv1.DeploymentState
	seen     []cutoverv1.DeploymentState
	last     *cutoverv1.Deployment
	rollback bool // RollbackDeployment acknowledged
	// abortedAgain: it was PREPARED again after stage 2 and aborted.
	abortedAgain bool
	// rollbackErr is the deployment's error when the rollback was asked:
	// another one while DEPLOYED says that the rollback stopped.
	rollbackErr string
	// rollbackRetries counts the rollbacks asked again: each runs the
	// hooks of the release that ran before again (a new command).
	rollbackRetries int
	stuck           bool // not final (nor PREPARED when prepare-only) within finalBound
}

func newRun(t *testing.T, plan Plan, disk bool) *run {
	r := &run{t: t, plan: plan, disk: disk, start: time.Now(), dangling: map[string]bool{}, anchors: map[anchor]chan struct{}{}}
	for i := range plan.Steps {
		for _, p := range []Phase{Stage1, Stage2, Rollback} {
			r.anchors[anchor{i, p}] = make(chan struct{})
		}
	}
	return r
}

// reach says that phase of deployment step began (once).
func (r *run) reach(step int, phase Phase) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.anchors[anchor{step, phase}]
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// event records what happened, with the time since the start of the run.
func (r *run) event(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%7.1fs %s", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...)))
}

// violation records a broken invariant; the run goes on.
func (r *run) violation(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.event("VIOLATION: %s", msg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.violations = append(r.violations, msg)
}

// do sets up, deploys under faults, checks, and reports.
func (r *run) do() {
	t := r.t
	t.Logf("plan:\n%s", r.plan)
	r.setup()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scenarioDone := make(chan struct{})
	injectorDone := make(chan struct{})
	go func() {
		defer close(injectorDone)
		r.inject(ctx, scenarioDone)
	}()
	go r.watchCurrent(ctx, injectorDone)
	r.deploy(ctx)
	close(scenarioDone)
	<-injectorDone
	r.check(ctx)

	tally.Lock()
	tally.runs++
	for _, f := range r.injected {
		tally.faults[f.Kind]++
	}
	for _, v := range r.violations {
		tally.violations = append(tally.violations, fmt.Sprintf("seed %d: %s", r.plan.Seed, v))
	}
	tally.Unlock()
	if len(r.violations) > 0 {
		t.Errorf("seed %d: %d invariant violations:\n- %s\n%s\nfaults injected: %d of %d\nevents:\n%s\nreplay: go test ./e2e/faults -run 'TestFaults/seed=%d$' -args -seed %d -runs 1 -kinds %s -deployments %d -faults %d",
			r.plan.Seed, len(r.violations), strings.Join(r.violations, "\n- "), r.plan, len(r.injected), len(r.plan.Faults),
			strings.Join(r.events, "\n"), r.plan.Seed, r.plan.Seed, *kindsFlag, *stepsFlag, *faultsFlag)
		return
	}
	t.Logf("seed %d: no violation in %s; %d faults injected; events:\n%s", r.plan.Seed, time.Since(r.start).Round(time.Second), len(r.injected), strings.Join(r.events, "\n"))
}

// setup starts the controller, the proxy and three agents, creates the
// environment with its SQLite database and registers hello.
func (r *run) setup() {
	t := r.t
	ctx := context.Background()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r.dir, r.src, r.db, r.hookLog = dir, filepath.Join(dir, "src"), filepath.Join(dir, "db", env+".db"), filepath.Join(dir, "hooks.log")
	if err := os.MkdirAll(filepath.Dir(r.db), 0o755); err != nil { // its own directory: DatabaseDown renames it
		t.Fatal(err)
	}
	if err := localcluster.CopyApp(filepath.Join("..", "..", "examples", "hello"), r.src, "v0"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "canary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "canary", "canary"), []byte("canary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r.listing, err = listDir("."); err != nil {
		t.Fatal(err)
	}
	if r.disk {
		for _, name := range agentNames {
			mnt := filepath.Join(dir, name)
			if err := os.MkdirAll(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+tmpfsSize, "tmpfs", mnt).CombinedOutput(); err != nil {
				t.Fatalf("mount a tmpfs on %s: %v: %s", mnt, err, out)
			}
			t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() }) // runs after the cluster is closed
		}
	}
	c, err := localcluster.Start(ctx, localcluster.Config{BinDir: binDir, Dir: dir,
		ControllerArgs: []string{"--log-level", "debug", "--source-root", r.src}})
	if c != nil {
		r.c = c
		t.Cleanup(func() {
			r.close()
			if t.Failed() {
				for _, p := range c.Procs() {
					t.Logf("--- last lines of %s:\n%s", p.Log, p.Tail(40))
				}
			}
		})
	}
	if err != nil {
		t.Fatalf("start the controller: %v", err)
	}
	port, err := localcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if r.proxy, err = NewProxy(fmt.Sprintf("127.0.0.1:%d", port), c.Addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.proxy.Close)
	c.AgentControllerAddr = r.proxy.Addr
	if _, err := c.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{
		Name: env, TwoStage: true, Database: &cutoverv1.Database{Driver: "sqlite", Dsn: r.db},
		// Short stage 2 deadlines, so that a stage 2 with an agent hung
		// ends well within hangBound (issue 14: stage 2 always ends).
		Stage2Deadlines: &cutoverv1.Stage2Deadlines{Arm: durationpb.New(stage2Deadline), Hooks: durationpb.New(stage2Deadline),
			Commit: durationpb.New(stage2Deadline)}}}); err != nil {
		t.Fatalf("CreateEnvironment: %v", err)
	}
	if err := c.StartAgents(ctx, env, agentNames...); err != nil {
		t.Fatalf("start agents: %v", err)
	}
	if _, err := c.Admin.RegisterApplication(ctx, &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: r.src}}); err != nil {
		t.Fatalf("RegisterApplication: %v", err)
	}
	r.event("cluster up in %s (controller %s, agents through proxy %s)", time.Since(r.start).Round(100*time.Millisecond), c.Addr, r.proxy.Addr)
}

// close stops every process, once.
func (r *run) close() {
	if r.closed || r.c == nil {
		return
	}
	r.closed = true
	for _, p := range r.c.Procs() {
		_ = syscall.Kill(p.Pid(), syscall.SIGCONT)
	}
	r.c.Close()
}

// writeSource sets the app source for deployment k (1-based) of version:
// VERSION, a before_activate hook that logs each run (the release it
// activates, and its working directory: the running release's, on the
// agent), and migration k+1,
// which records its own run in the table fault_runs.
func (r *run) writeSource(k int, version string) error {
	if err := localcluster.WriteVersion(r.src, version); err != nil {
		return err
	}
	spec := fmt.Sprintf(`name: hello
build:
  command: go build -o bin/hello .
  output: .
run:
  command: bin/hello
  health: "http://127.0.0.1:${PORT}/healthz"
  health_timeout: 15s
migrations: db/migrations
hooks:
  before_activate: [{command: 'echo "before_activate $CUTOVER_RELEASE_ID $(pwd)" >> %s; sleep 1; while [ -e %s ]; do sleep 0.2; done', timeout: 1m}]
`, r.hookLog, r.hangFile())
	if err := os.WriteFile(filepath.Join(r.src, "cutover.yaml"), []byte(spec), 0o644); err != nil {
		return err
	}
	v := k + 1
	sql := fmt.Sprintf("CREATE TABLE IF NOT EXISTS fault_runs (version INTEGER NOT NULL, deployment TEXT NOT NULL);\nCREATE TABLE step_%d (x INTEGER);\nINSERT INTO fault_runs (version, deployment) VALUES (%d, '%s');\n", v, v, version)
	return os.WriteFile(filepath.Join(r.src, "db", "migrations", fmt.Sprintf("%04d_step_%d.up.sql", v, v)), []byte(sql), 0o644)
}

// deploy makes the plan's deployments one after the other.
func (r *run) deploy(ctx context.Context) {
	for i, step := range r.plan.Steps {
		d := &dep{step: step, index: i + 1}
		if err := r.writeSource(d.index, step.Version); err != nil {
			r.t.Fatal(err)
		}
		created, err := r.call(ctx, "CreateDeployment "+step.Version, nil, func(ctx context.Context) (*cutoverv1.Deployment, error) {
			return r.c.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: env,
				Applications: []*cutoverv1.ApplicationVersion{{Name: app, VersionLabel: step.Version}}})
		})
		if err != nil {
			r.violation("CreateDeployment %s refused or unanswered for %s: %v", step.Version, callBound, err)
			return
		}
		d.id = created.GetId()
		d.acked = append(d.acked, created.GetState())
		r.mu.Lock()
		r.deps = append(r.deps, d)
		r.mu.Unlock()
		r.event("%s: created %s (%s)", step.Version, d.id, short(created.GetState()))

		ok := r.stage(ctx, d)
		for _, p := range []Phase{Stage1, Stage2, Rollback} { // faults that follow a phase this deployment skipped come now
			r.reach(i, p)
		}
		if !ok {
			return // the environment may be blocked: the next deployment cannot start
		}
	}
}

// stage drives d through its step; false when it did not settle.
func (r *run) stage(ctx context.Context, d *dep) bool {
	var err error
	if d.step.Single {
		err = r.act(ctx, d, "StartDeployment", func(ctx context.Context) (*cutoverv1.Deployment, error) {
			return r.c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: d.id})
		})
		r.reach(d.index-1, Stage1)
	} else {
		err = r.act(ctx, d, "PrepareDeployment", func(ctx context.Context) (*cutoverv1.Deployment, error) {
			return r.c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d.id})
		})
		r.reach(d.index-1, Stage1)
		if err == nil && !r.wait(ctx, d, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED) {
			return false
		}
		if err == nil && d.step.PrepareOnly {
			return true
		}
		if err == nil && d.last.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED {
			err = r.act(ctx, d, "ContinueDeployment", func(ctx context.Context) (*cutoverv1.Deployment, error) {
				return r.c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d.id})
			})
			r.reach(d.index-1, Stage2)
		}
	}
	if err != nil && status.Code(errors.Unwrap(err)) == codes.FailedPrecondition && d.last.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED {
		r.violation("%s stays PREPARED: continue refused for %s after the faults: %v", d.id, refusedBound, err)
		return false
	}
	if err != nil {
		r.event("%s: %v", d.id, err)
	}
	if !r.wait(ctx, d, cutoverv1.DeploymentState_DEPLOYMENT_STATE_UNSPECIFIED) {
		return false
	}
	if d.step.Rollback && d.last.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED {
		return r.rollback(ctx, d)
	}
	return true
}

// rollbackAttempts is how many times the run asks for a rollback that
// stops (a hook interrupted by a fault, say) before it gives up.
const rollbackAttempts = 3

// rollback rolls d back, and asks again, as its error says, when the
// rollback stops with the deployment still DEPLOYED; false when it did not
// settle.
func (r *run) rollback(ctx context.Context, d *dep) bool {
	for attempt := 1; ; attempt++ {
		d.rollbackErr = d.last.GetError()
		err := r.act(ctx, d, "RollbackDeployment", func(ctx context.Context) (*cutoverv1.Deployment, error) {
			return r.c.Admin.RollbackDeployment(ctx, &cutoverv1.RollbackDeploymentRequest{Id: d.id, Reason: "fault suite"})
		})
		r.reach(d.index-1, Rollback)
		if err != nil {
			r.event("%s: %v", d.id, err)
			return true
		}
		d.rollback = true
		if !r.wait(ctx, d, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK) {
			return false
		}
		if d.last.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED {
			return true
		}
		if attempt == rollbackAttempts {
			r.event("%s: the rollback stopped %d times; the run leaves it DEPLOYED", d.id, attempt)
			return true
		}
		r.event("%s: the rollback stopped (still DEPLOYED); asking again, as its error says", d.id)
		d.rollbackRetries++
	}
}

// act sends one state-changing request for d and records the state it
// acknowledged. A request retried after an unanswered one may find its
// work already done: FAILED_PRECONDITION is then read as done if the
// deployment has moved on.
func (r *run) act(ctx context.Context, d *dep, method string, f func(context.Context) (*cutoverv1.Deployment, error)) error {
	before := d.last.GetState()
	if before == cutoverv1.DeploymentState_DEPLOYMENT_STATE_UNSPECIFIED {
		before = cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED
	}
	got, err := r.call(ctx, method+" "+d.id, func(ctx context.Context) bool {
		cur, err := r.c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d.id})
		return err == nil && (rank(cur.GetState()) > rank(before) || method == "RollbackDeployment" && cur.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK)
	}, f)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if got != nil {
		d.acked = append(d.acked, got.GetState())
		d.last = got
		r.event("%s: %s acknowledged %s", d.id, method, short(got.GetState()))
	} else {
		r.event("%s: %s had landed before its answer was lost", d.id, method)
	}
	return nil
}

// call sends a request, retrying while the controller is unreachable, for
// up to callBound, and while it refuses with FAILED_PRECONDITION because
// agents are not connected (again, after a fault), for up to refusedBound. landed, if set, says after a FAILED_PRECONDITION that
// follows an unanswered attempt whether that attempt did the work; call
// then returns nil, nil.
func (r *run) call(ctx context.Context, what string, landed func(context.Context) bool, f func(context.Context) (*cutoverv1.Deployment, error)) (*cutoverv1.Deployment, error) {
	deadline, refusedUntil := time.Now().Add(callBound), time.Now().Add(refusedBound)
	unanswered := false
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := f(rctx)
		cancel()
		if err == nil {
			return d, nil
		}
		code := status.Code(err)
		if code == codes.FailedPrecondition && unanswered && landed != nil {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ok := landed(lctx)
			cancel()
			if ok {
				return nil, nil
			}
		}
		if code == codes.FailedPrecondition && strings.Contains(err.Error(), "not connected") && time.Now().Before(refusedUntil) && ctx.Err() == nil {
			// Agents not connected again yet after a fault, say: an operator would retry.
			r.event("%s: %v; retrying", what, err)
			time.Sleep(time.Second)
			continue
		}
		if code != codes.Unavailable && code != codes.DeadlineExceeded && code != codes.Canceled || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		unanswered = true
		r.event("%s: %s; retrying", what, code)
		time.Sleep(500 * time.Millisecond)
	}
}

// wait polls d until it is final, or in want, within finalBound; it
// records every state seen. False (and a violation) when the bound passes.
func (r *run) wait(ctx context.Context, d *dep, want cutoverv1.DeploymentState) bool {
	var lastErr error
	err := poll.Until(ctx, finalBound, func() error {
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := r.c.Admin.GetDeployment(gctx, &cutoverv1.GetDeploymentRequest{Id: d.id})
		cancel()
		if err != nil {
			lastErr = err
			return err
		}
		d.last = got
		s := got.GetState()
		if len(d.seen) == 0 || d.seen[len(d.seen)-1] != s {
			d.seen = append(d.seen, s)
			if e := got.GetError(); e != "" {
				r.event("%s: %s: %s", d.id, short(s), e)
			} else {
				r.event("%s: %s", d.id, short(s))
			}
			if s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING {
				r.reach(d.index-1, Stage2)
			}
		}
		if s == want || s.Final() && !(want == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK && s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED) {
			return nil
		}
		if want != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED && s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED &&
			slices.Contains(d.seen, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING) && !d.abortedAgain {
			// Stage 2 ended before anything changed (a deadline passed, a
			// step failed): PREPARED again, as issue 13 wants. The operator
			// here gives up on it, so that the environment is free.
			d.abortedAgain = true
			r.event("%s: PREPARED again after stage 2; aborting it", d.id)
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := r.c.Admin.AbortDeployment(actx, &cutoverv1.AbortDeploymentRequest{Id: d.id, Reason: "fault suite: stage 2 ended before any swap"})
			cancel()
			if err != nil {
				r.event("%s: abort: %v", d.id, err)
			}
		}
		if want == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK && s == cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED &&
			got.GetError() != "" && got.GetError() != d.rollbackErr {
			r.event("%s: rollback stopped: %s", d.id, got.GetError())
			return nil // the rollback stopped
		}
		return fmt.Errorf("still %s", short(s))
	})
	if err == nil {
		return true
	}
	d.stuck = true
	r.violation("deployment %s (%s) not final within %s: still %s (last error %v); error %q", d.id, d.step, finalBound, short(d.last.GetState()), lastErr, d.last.GetError())
	return false
}

// inject applies the plan's faults, one at a time, until the scenario is
// done; then it heals everything (SIGCONT, proxy restored) and starts what
// is down.
func (r *run) inject(ctx context.Context, scenarioDone <-chan struct{}) {
	defer r.heal(ctx)
	for i, f := range r.plan.Faults {
		ch := r.anchors[anchor{f.Step, f.Phase}]
		select {
		case <-ch:
		case <-scenarioDone:
			select {
			case <-ch:
			default:
				r.event("deployment %d never ran: faults %d..%d not injected", f.Step+1, i+1, len(r.plan.Faults))
				return
			}
		}
		time.Sleep(f.Delay)
		r.event("fault %d: %s", i+1, f)
		if err := r.apply(ctx, f); err != nil {
			r.violation("fault %d (%s): recovery failed: %v", i+1, f, err)
		}
		r.injected = append(r.injected, f)
		r.event("fault %d over", i+1)
		r.supervise(ctx)
	}
}

// apply injects f and waits until it is over.
func (r *run) apply(ctx context.Context, f Fault) error {
	c := r.c
	a := c.Agents[f.Agent]
	switch f.Kind {
	case KillController:
		c.Controller.Kill()
		time.Sleep(f.Down)
		return c.StartController(ctx)
	case KillAgent:
		a.Proc.Kill()
		time.Sleep(f.Down)
		return c.RestartAgent(ctx, a, env)
	case StopController, StopAgent:
		pid := c.Controller.Pid()
		if f.Kind == StopAgent {
			pid = a.Proc.Pid()
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return err
		}
		time.Sleep(f.Down)
		return syscall.Kill(pid, syscall.SIGCONT)
	case HangAgent:
		return r.hang(ctx, f, a)
	case CutNetwork:
		r.proxy.Cut()
		time.Sleep(f.Down)
		return r.proxy.Restore()
	case SlowNetwork:
		if err := r.proxy.Slow(f.LatencyMs, f.LatencyMs/4); err != nil {
			return err
		}
		time.Sleep(f.Down)
		r.proxy.Fast()
		return nil
	case HangHook:
		if err := os.WriteFile(r.hangFile(), nil, 0o644); err != nil {
			return err
		}
		time.Sleep(f.Down)
		return os.Remove(r.hangFile())
	case DatabaseDown:
		dir := filepath.Dir(r.db)
		if err := os.Rename(dir, dir+".down"); err != nil {
			return err
		}
		time.Sleep(f.Down)
		return os.Rename(dir+".down", dir)
	case DiskFull:
		filler := filepath.Join(r.dir, a.Name, "filler")
		n, err := fill(filler)
		r.event("disk of %s full (%d MiB written)", a.Name, n>>20)
		time.Sleep(f.Down)
		if rmErr := os.Remove(filler); rmErr != nil {
			return rmErr
		}
		return err
	}
	return fmt.Errorf("unknown fault kind %q", f.Kind)
}

// hangBound is how long stage 2 may stay ACTIVATING while an agent is
// stopped (HangAgent): keepalive (~10 s) plus a step's deadline.
const hangBound = 45 * time.Second

// stage2Deadline is each step's deadline in the environment of a run.
const stage2Deadline = 15 * time.Second

// hang stops agent a for f.Down while stage 2 of deployment f.Step runs,
// and checks that the deployment leaves ACTIVATING within hangBound
// although the agent stays stopped.
func (r *run) hang(ctx context.Context, f Fault, a *localcluster.Agent) error {
	r.mu.Lock()
	var d *dep
	if f.Step < len(r.deps) {
		d = r.deps[f.Step]
	}
	r.mu.Unlock()
	pid := a.Proc.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return err
	}
	defer syscall.Kill(pid, syscall.SIGCONT) //nolint:errcheck // best effort; heal sends it again
	start := time.Now()
	reported := false
	for time.Since(start) < f.Down {
		time.Sleep(time.Second)
		if d == nil || reported {
			continue
		}
		gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := r.c.Admin.GetDeployment(gctx, &cutoverv1.GetDeploymentRequest{Id: d.id})
		cancel()
		if err == nil && got.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING && time.Since(start) > hangBound {
			r.violation("deployment %s stayed ACTIVATING for %s while agent %s was stopped (SIGSTOP); stage 2 must end without it (issue 14: stage 2 deadlines)", d.id, hangBound, a.Name)
			reported = true
		}
	}
	return syscall.Kill(pid, syscall.SIGCONT)
}

// fill writes zeros to path until its file system is full.
func fill(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// supervise starts again, as systemd would, a process that ended by
// itself, and records it; a panic in its log is a violation.
func (r *run) supervise(ctx context.Context) {
	c := r.c
	if ended, err := c.Controller.Exited(); ended {
		r.event("the controller ended by itself (%v); log:\n%s", err, c.Controller.Tail(15))
		if strings.Contains(c.Controller.Tail(200), "panic:") {
			r.violation("the controller panicked; see its log")
		}
		if err := c.StartController(ctx); err != nil {
			r.violation("the controller does not start again: %v", err)
		}
	}
	for _, a := range c.Agents {
		if ended, err := a.Proc.Exited(); ended {
			r.event("agent %s ended by itself (%v); log:\n%s", a.Name, err, a.Proc.Tail(15))
			if strings.Contains(a.Proc.Tail(200), "panic:") {
				r.violation("agent %s panicked; see its log", a.Name)
			}
			if err := c.RestartAgent(ctx, a, env); err != nil {
				r.violation("agent %s does not start again: %v", a.Name, err)
			}
		}
	}
}

// heal undoes whatever a fault left: SIGCONT to every process, the proxy
// restored and fast, a process that ended started again.
func (r *run) heal(ctx context.Context) {
	for _, p := range r.c.Procs() {
		_ = syscall.Kill(p.Pid(), syscall.SIGCONT)
	}
	_ = os.Remove(r.hangFile())
	if dir := filepath.Dir(r.db); !exists(dir) {
		_ = os.Rename(dir+".down", dir)
	}
	_ = r.proxy.Restore()
	r.proxy.Fast()
	r.supervise(ctx)
}

// watchCurrent checks, every 100 ms until done, that no agent's
// ROOT/hello/current points to nothing.
func (r *run) watchCurrent(ctx context.Context, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		for _, name := range agentNames {
			if err := checkCurrentLink(filepath.Join(r.dir, name, "root", app, "current")); err != nil {
				r.mu.Lock()
				seen := r.dangling[name]
				r.dangling[name] = true
				r.mu.Unlock()
				if !seen {
					r.violation("agent %s: %v", name, err)
				}
			}
		}
	}
}

// checkCurrentLink returns an error if link is a symlink whose target does
// not exist (read twice, so that a swap in between is not taken for one).
func checkCurrentLink(link string) error {
	for range 3 {
		target, err := os.Readlink(link)
		if err != nil {
			return nil // no current (yet), or not a link: checked at the end
		}
		abs := target
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(filepath.Dir(link), target)
		}
		if _, err := os.Stat(abs); err == nil {
			return nil
		}
		if again, _ := os.Readlink(link); again == target {
			return fmt.Errorf("%s -> %s, which does not exist", link, target)
		}
	}
	return nil
}

// rank orders the states along the deployment's life.
func rank(s cutoverv1.DeploymentState) int {
	switch s {
	case cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED:
		return 0
	case cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING:
		return 1
	case cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED:
		return 2
	case cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING:
		return 2 // a stage 2 that ends before anything changed is PREPARED again
	}
	if s.Final() {
		return 4
	}
	return -1
}

// short is a state without its prefix.
func short(s cutoverv1.DeploymentState) string {
	return strings.TrimPrefix(s.String(), "DEPLOYMENT_STATE_")
}

// canMountTmpfs tries to mount (and unmount) a small tmpfs.
func canMountTmpfs() error {
	dir, err := os.MkdirTemp("", "cutover-faults-tmpfs-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount -t tmpfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return exec.Command("umount", dir).Run()
}

// listDir lists the names in dir, sorted.
func listDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// hangFile is the file whose presence makes the before_activate hook wait
// (HangHook).
func (r *run) hangFile() string { return filepath.Join(r.dir, "hook.hang") }

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
