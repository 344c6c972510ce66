package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// hooksApp is examples/hello whose cutover.yaml gets hooks.
type hooksApp struct {
	t         *testing.T
	src, base string
	log       string // the file the hooks append to
}

func newHooksApp(t *testing.T, dir string) *hooksApp {
	t.Helper()
	src := filepath.Join(dir, "src")
	copyApp(t, src, "v1")
	b, err := os.ReadFile(filepath.Join(src, "cutover.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return &hooksApp{t: t, src: src, base: string(b), log: filepath.Join(dir, "hooks.log")}
}

// record is a hook command that appends "WORD <its working directory>" to the log.
func (h *hooksApp) record(word string) string {
	return fmt.Sprintf(`echo "%s $(pwd)" >> %s`, word, h.log)
}

// set writes version and the hooks: before_activate and after_activate run
// once on a scheduler front-end, validate on each.
func (h *hooksApp) set(version, before, validate, after string) {
	h.t.Helper()
	writeVersion(h.t, h.src, version)
	spec := h.base + fmt.Sprintf(`hooks:
  before_activate: [{command: '%s', on: once, labels: {role: scheduler}, timeout: 1m}]
  validate: [{command: '%s'}]
  after_activate: [{command: '%s', on: once, labels: {role: scheduler}}]
`, before, validate, after)
	if err := os.WriteFile(filepath.Join(h.src, "cutover.yaml"), []byte(spec), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// lines returns the log's lines, "WORD AGENT/RELEASE" each (the working
// directory shortened to the agent and the release).
func (h *hooksApp) lines() []string {
	h.t.Helper()
	b, err := os.ReadFile(h.log)
	if err != nil && !os.IsNotExist(err) {
		h.t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		word, dir, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		// DIR/AGENT/root/hello/releases/RELEASE
		parts := strings.Split(dir, string(filepath.Separator))
		if len(parts) >= 5 {
			out = append(out, word+" "+parts[len(parts)-5]+"/"+short(parts[len(parts)-1]))
		}
	}
	return out
}

func short(id string) string { return id[:min(12, len(id))] }

// TestHooksResumeAndSwapSpread drives hooks over the real binaries, three
// agents, two of them schedulers: the once hooks run on the first
// scheduler by name, in the release that runs when they run; a failing
// before_activate hook stops stage 2 with nothing swapped and the resume
// hook still runs; a staged file damaged after prepare is repaired by the
// arm step; a failing validate hook rolls back. Every deployed stage 2
// records its swap spread. A rollback by command runs the hooks of the
// release it goes back to.
func TestHooksResumeAndSwapSpread(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	app := newHooksApp(t, c.dir)
	c.createEnv("hooks", true)
	c.startAgents("hooks", "fe-1")
	if err := c.StartLabeledAgents(ctx, "hooks", map[string]string{"role": "scheduler"}, "fe-2", "fe-3"); err != nil {
		t.Fatal(err)
	}
	app.set("v1", app.record("suspend"), "test -s VERSION", app.record("resume"))
	c.registerApp(app.src)

	t.Log("v1: the hooks run in stage 2's order; once = fe-2, the first scheduler by name")
	d1 := c.createDeployment("hooks", "hello", "v1")
	c.prepareAndWait(d1)
	dep1 := c.continueAndWait(d1, deployed)
	v1 := releaseOf(t, dep1)
	// Nothing ran before: before_activate runs in the new release.
	want := []string{"suspend fe-2/" + short(v1), "resume fe-2/" + short(v1)}
	if got := app.lines(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("hook log = %v, want %v", got, want)
	}
	for _, a := range dep1.GetAgents() {
		if n := map[string]int{"fe-1": 1, "fe-2": 3, "fe-3": 1}[a.GetName()]; len(a.GetHooks()) != n {
			t.Errorf("agent %s ran %d hooks, want %d: %v", a.GetName(), len(a.GetHooks()), n, a.GetHooks())
		}
	}
	spread := dep1.GetActivationSpread()
	if spread == nil || spread.AsDuration() < 0 || spread.AsDuration() > 5*time.Second {
		t.Errorf("activation_spread = %v, want a measured spread", spread)
	}
	t.Logf("swap spread with 3 agents: %s (arm %s, swap %s)", spread.AsDuration(), dep1.GetArmDuration().AsDuration(), dep1.GetSwapDuration().AsDuration())
	c.checkAnswers("v1")
	if t.Failed() {
		t.FailNow()
	}

	t.Log("v2: before_activate fails after suspending: PREPARED again, nothing swapped, the scheduler resumed")
	app.set("v2", app.record("suspend")+"; echo cannot suspend >&2; exit 4", "test -s VERSION", app.record("resume"))
	d2 := c.createDeployment("hooks", "hello", "v2")
	c.prepareAndWait(d2)
	dep2, failure := c.continueBack(d2)
	mentionsAll(t, "the failure", failure, "before_activate hook", "exited with status 4", "nothing was swapped", "after_activate hooks ran")
	want = append(want, "suspend fe-2/"+short(v1), "resume fe-2/"+short(v1)) // in the release that runs: v1
	if got := app.lines(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("hook log = %v, want %v", got, want)
	}
	checkNoSwap(t, dep2)
	c.checkCurrent("hello", v1)
	c.checkAnswers("v1")
	c.waitFor(20*time.Second, "every current.next removed (disarm)", func() error {
		for _, a := range c.Agents {
			if _, err := os.Lstat(filepath.Join(a.Root, "hello", "current.next")); err == nil {
				return fmt.Errorf("agent %s still has current.next", a.Name)
			}
		}
		return nil
	})
	code, out, _ := c.ctl("deploy", "get", d2)
	if code != 0 || !strings.Contains(out, "before_activate") || !strings.Contains(out, "cannot suspend") || !strings.Contains(out, "after_activate") {
		t.Errorf("deploy get %s (exit %d) does not show the hooks, their exit status and output:\n%s", d2, code, out)
	}
	if _, err := c.Admin.AbortDeployment(context.Background(), &cutoverv1.AbortDeploymentRequest{Id: d2}); err != nil { // it holds the environment
		t.Fatalf("abort %s: %v", d2, err)
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Log("v3: a staged file damaged after prepare is repaired by the arm step")
	app.set("v3", app.record("suspend"), "test -s VERSION", app.record("resume"))
	d3 := c.createDeployment("hooks", "hello", "v3")
	v3 := releaseOf(t, c.prepareAndWait(d3))
	damaged := filepath.Join(c.Agents[0].Root, "hello", "releases", v3, "VERSION")
	if err := os.WriteFile(damaged, []byte("vX\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.continueAndWait(d3, deployed)
	c.checkAnswers("v3")
	if b, _ := os.ReadFile(damaged); string(b) != "v3\n" {
		t.Errorf("%s = %q after stage 2, want it repaired to v3", damaged, b)
	}

	t.Log("v4: a failing validate hook rolls the activation back")
	app.set("v4", app.record("suspend"), "exit 5", app.record("resume"))
	d4 := c.createDeployment("hooks", "hello", "v4")
	c.prepareAndWait(d4)
	dep4 := c.continueAndWait(d4, rolledBack)
	mentionsAll(t, "the error", dep4.GetError(), "validate hook", "exited with status 5")
	c.checkCurrent("hello", v3)
	c.checkAnswers("v3")
	if got := app.lines(); len(got) < 2 || got[len(got)-1] != "resume fe-2/"+short(v3) {
		t.Errorf("hook log = %v, want the resume hook last, in v3 (the release that runs again)", got)
	}

	t.Log("v3 rolled back by command: the hooks of v1, the release it goes back to, run as in v1's activation")
	n := len(app.lines())
	code, out, errOut := c.ctl("deploy", "rollback", d3, "--wait")
	if code != 0 {
		t.Fatalf("cutoverctl deploy rollback %s --wait: exit %d\n%s\n%s", d3, code, out, errOut)
	}
	c.checkCurrent("hello", v1)
	c.checkAnswers("v1")
	// suspend in v3 (what runs when it runs), resume in v1 (what runs after).
	want = []string{"suspend fe-2/" + short(v3), "resume fe-2/" + short(v1)}
	if got := app.lines()[n:]; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("hook log of the rollback = %v, want %v", got, want)
	}
}

// TestSwapSpread measures the activation spread of a stage 2 on N agents
// (CUTOVER_E2E_SPREAD_AGENTS, e.g. 3 or 10; skipped when unset): a
// measurement, not a check of a bound. CUTOVER_E2E_RACE=0 measures
// binaries built without the race detector:
//
//	CUTOVER_E2E_RACE=0 CUTOVER_E2E_SPREAD_AGENTS=10 go test ./e2e -run 'TestSwapSpread$' -count=1 -v
func TestSwapSpread(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CUTOVER_E2E_SPREAD_AGENTS"))
	if n <= 0 {
		t.Skip("set CUTOVER_E2E_SPREAD_AGENTS=N to measure the swap spread with N agents")
	}
	c := newCluster(t)
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("spread", true)
	var names []string
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("fe-%d", i))
	}
	c.startAgents("spread", names...)
	c.registerApp(src)
	var spreads []string
	for _, v := range []string{"v1", "v2", "v3"} {
		writeVersion(t, src, v)
		d := c.createDeployment("spread", "hello", v)
		c.prepareAndWait(d)
		dep := c.continueAndWait(d, deployed)
		spreads = append(spreads, dep.GetActivationSpread().AsDuration().String())
		t.Logf("%d agents, %s: activation_spread %s (arm %s, swap %s)", n, v, dep.GetActivationSpread().AsDuration(),
			dep.GetArmDuration().AsDuration(), dep.GetSwapDuration().AsDuration())
	}
	c.checkAnswers("v3")
	race := "with -race"
	if os.Getenv("CUTOVER_E2E_RACE") == "0" {
		race = "without -race"
	}
	t.Logf("swap spread with %d agents (binaries built %s): %s", n, race, strings.Join(spreads, ", "))
}
