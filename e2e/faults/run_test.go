package faults

import (
	"context"
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

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cutover-dev/cutover/internal/localcluster"
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
	c, err := localcluster.Start(ctx, localcluster.Config{BinDir: binDir, Dir: dir, Pprof: true, // goroutines for explain
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

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
