package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestSwitchAgentKilledWhileHeld: the held commit under a fault. Two
// front-ends switch an app with run.listen under the probe; fe-2's new
// process is kept from turning healthy (examples/listen's hold file) while
// fe-1's is healthy and waits for the fleet (ready); fe-1's agent is then
// killed with SIGKILL, fe-2 let go, and fe-1's agent started again. fe-1's
// agent, at its start, adopts its apps, stops the new process of the
// unfinished hand-over and swaps back; its commit fails, the controller
// aborts fe-2's held commit, and the fleet ends on v1 in one consistent
// state: no request refused or failed at any moment, both front-ends
// answering v1, `current` on v1 everywhere.
func TestSwitchAgentKilledWhileHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCluster(t)
	c.createEnv("prod", true)
	c.startAgents("prod", "fe-1", "fe-2")
	app := c.newListenApp("web", "v1", appKind{listen: true})
	d1 := c.deployVersion("prod", "web", "v1", deployed)
	v1 := releaseOf(t, d1)
	p := c.startProbe("v1")
	noImpact(t, "v1 running", phase(t, p, "v1 running"))

	fe1, fe2 := c.Agents[0], c.Agents[1]
	hold := filepath.Join(os.TempDir(), "cutover-listen-hold-"+strconv.Itoa(fe2.Port))
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(hold) })

	app.setVersion("v2", false)
	id := c.createDeployment("prod", "web", "v2")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	c.waitDeployment(id, prepared)
	if _, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	c.waitFor(deployDeadline, "fe-1 ready and held, fe-2 not yet", func() error {
		d, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil {
			return err
		}
		ready := map[string]bool{}
		for _, a := range d.GetAgents() {
			ready[a.GetName()] = a.GetReady()
		}
		if d.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING || !ready["fe-1"] || ready["fe-2"] {
			return fmt.Errorf("deployment %s is %s, ready %v", id, d.GetState(), ready)
		}
		return nil
	})
	noImpact(t, "fe-1 held", phase(t, p, "fe-1 held, v1 and v2 serving there"))

	t.Logf("%s: agent killed while its commit is held", fe1.Name)
	fe1.Proc.Kill()
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	noImpact(t, "fe-1 without agent", phase(t, p, "fe-1's agent dead, fe-2 let go"))
	if err := c.StartAgent(ctx, fe1, "prod"); err != nil {
		t.Fatalf("start %s again: %v", fe1.Name, err)
	}
	d := c.waitSettled(id, rolledBack)
	if d.GetState() != rolledBack && d.GetState() != failed {
		t.Fatalf("deployment %s ended %s, want ROLLED_BACK or FAILED:\n%s", id, d.GetState(), asJSON(d))
	}
	t.Logf("deployment %s ended %s: %s", id, d.GetState(), d.GetError())
	c.afterSwitch(p, "v1 → v2 with fe-1's agent killed while held", "v1")
	c.checkAnswers("v1")
	c.checkCurrent("web", v1)
}
