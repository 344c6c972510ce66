package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestHooksRunOnceAcrossControllerKills: a before_activate hook's side
// effect happens once per front-end although the controller is killed -9
// while the hooks run, in both ways a result can be lost:
//
//   - killed and restarted while the first hook runs: the resent command
//     reaches agents that still run it;
//   - killed while the second hook runs, which ends while no controller
//     listens (its result is lost), and started again: the resent command
//     reaches agents that ran every hook; they answer from their hook
//     journal instead of running the hooks again (before issue 14, the
//     hooks ran a second time here).
//
// Each hook blocks until its gate file appears.
func TestHooksRunOnceAcrossControllerKills(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	app := newHooksApp(t, c.dir)
	gate1, gate2 := filepath.Join(c.dir, "gate1"), filepath.Join(c.dir, "gate2")
	hookCmd := func(n int, gate string) string {
		return fmt.Sprintf(`echo "start%d $(pwd)" >> %s; while [ ! -e %s ]; do sleep 0.05; done; echo "end%d $(pwd)" >> %s`, n, app.log, gate, n, app.log)
	}
	spec := app.base + fmt.Sprintf("hooks:\n  before_activate: [{command: '%s', timeout: 2m}, {command: '%s', timeout: 2m}]\n", hookCmd(1, gate1), hookCmd(2, gate2))
	if err := os.WriteFile(filepath.Join(app.src, "cutover.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	c.createEnv("once", true)
	c.startAgents("once", "fe-1", "fe-2")
	c.registerApp(app.src)
	d := c.createDeployment("once", "hello", "v1")
	v1 := releaseOf(t, c.prepareAndWait(d))
	if _, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d}); err != nil {
		t.Fatalf("ContinueDeployment: %v", err)
	}
	// count returns how many lines "WORD fe-N/RELEASE" the hooks wrote, per line.
	count := func() map[string]int {
		out := map[string]int{}
		for _, l := range app.lines() {
			out[l]++
		}
		return out
	}
	waitLines := func(what string, words ...string) {
		t.Helper()
		c.waitFor(deployDeadline, what, func() error {
			got := count()
			for _, w := range words {
				for _, a := range []string{"fe-1", "fe-2"} {
					if got[w+" "+a+"/"+short(v1)] == 0 {
						return fmt.Errorf("no %q from %s yet: %v", w, a, app.lines())
					}
				}
			}
			return nil
		})
	}

	t.Log("the controller is killed -9 and restarted while the first hook runs on both front-ends")
	waitLines("the first hook runs on both front-ends", "start1")
	c.restartController()
	if err := os.WriteFile(gate1, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Log("the controller is killed -9 while the second hook runs; the hook ends while it is down")
	waitLines("the second hook runs on both front-ends", "start2")
	c.Controller.Kill()
	if err := os.WriteFile(gate2, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitLines("the second hook ends on both front-ends, with no controller to hear it", "end2")
	if err := c.StartController(ctx); err != nil {
		t.Fatalf("start the controller again: %v", err)
	}

	dep := c.waitDeployment(d, deployed)
	c.checkCurrent("hello", v1)
	got := count()
	for _, a := range []string{"fe-1", "fe-2"} {
		for _, w := range []string{"start1", "end1", "start2", "end2"} {
			if n := got[w+" "+a+"/"+short(v1)]; n != 1 {
				t.Errorf("front-end %s: %q written %d times, want once (hook log: %v)", a, w, n, app.lines())
			}
		}
	}
	for _, a := range dep.GetAgents() {
		var kinds []string
		for _, h := range a.GetHooks() {
			kinds = append(kinds, h.GetKind().String())
		}
		if len(kinds) != 2 || slices.ContainsFunc(a.GetHooks(), func(h *cutoverv1.HookResult) bool { return h.GetExitCode() != 0 }) {
			t.Errorf("agent %s reports hooks %v, want the two before_activate hooks, succeeded:\n%s", a.GetName(), kinds, asJSON(a))
		}
	}
	// The second case must have reached the journal (else it tested nothing).
	for _, a := range c.Agents {
		b, err := os.ReadFile(a.Proc.Log)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "answered from the journal") {
			t.Errorf("agent %s never answered a resent hooks command from its journal; log ends:\n%s", a.Name, a.Proc.Tail(30))
		}
	}
}
