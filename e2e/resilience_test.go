package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cutover-dev/cutover/internal/localcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestCrashesAndAbort checks what must survive crashes: the controller
// killed while stage 1 runs resumes it; an agent killed (with its apps) while
// a deployment is PREPARED comes back with the release still staged, and
// runs its app again after continue; an aborted PREPARED deployment changes
// nothing that runs, its staged release is dropped, and the environment
// takes the next deployment.
func TestCrashesAndAbort(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("prod", true)
	c.startAgents("prod", "fe-1", "fe-2")
	c.registerApp(src)

	t.Log("the controller is killed while stage 1 runs, and resumes it")
	d1 := c.createDeployment("prod", "hello", "v1")
	got, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d1})
	if err != nil {
		t.Fatalf("PrepareDeployment: %v", err)
	}
	if got.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING {
		t.Fatalf("PrepareDeployment returned %s, want PREPARING", got.GetState())
	}
	c.restartController()
	c.waitDeployment(d1, prepared)

	t.Log("an agent crashes while the deployment is PREPARED")
	if err := c.RestartAgent(ctx, c.Agents[0], "prod"); err != nil {
		t.Fatalf("restart agent: %v", err)
	}
	v1 := releaseOf(t, c.waitDeployment(d1, prepared))
	c.waitStaged("prod", "hello", "", v1)
	c.checkMaterialized(src, "hello", v1)

	if _, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d1}); err != nil {
		t.Fatalf("ContinueDeployment: %v", err)
	}
	c.waitDeployment(d1, deployed)
	c.checkCurrent("hello", v1)
	c.checkAnswers("v1")

	t.Log("an agent crashes with its app: it runs the current release again")
	if err := c.RestartAgent(ctx, c.Agents[1], "prod"); err != nil {
		t.Fatalf("restart agent: %v", err)
	}
	c.waitFor(deployDeadline, "restarted agent runs hello again", func() error {
		v, err := localcluster.Answer(c.Agents[1].Port)
		if err == nil && v != "v1" {
			err = fmt.Errorf("answers %q", v)
		}
		return err
	})

	t.Log("a PREPARED deployment is aborted")
	writeVersion(t, src, "v2")
	d2 := c.createDeployment("prod", "hello", "v2")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d2}); err != nil {
		t.Fatalf("PrepareDeployment: %v", err)
	}
	v2 := releaseOf(t, c.waitDeployment(d2, prepared))
	code, out, errOut := c.ctl("deploy", "abort", d2, "--reason", "e2e: changed my mind")
	if code != 0 {
		t.Fatalf("cutoverctl deploy abort: exit %d\n%s%s", code, out, errOut)
	}
	aborted, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d2})
	if err != nil || aborted.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ABORTED {
		t.Fatalf("after abort: %v (%v), want ABORTED", aborted.GetState(), err)
	}
	c.checkCurrent("hello", v1)
	c.checkAnswers("v1")
	c.waitFor(deployDeadline, "agents drop the aborted release", func() error {
		resp, err := c.Admin.ListAgents(ctx, &cutoverv1.ListAgentsRequest{Environment: "prod"})
		if err != nil {
			return err
		}
		for _, a := range resp.GetAgents() {
			for _, app := range a.GetApplications() {
				if slices.Contains(app.GetStagedReleaseIds(), v2) {
					return fmt.Errorf("agent %s still has %s staged", a.GetName(), v2)
				}
			}
		}
		return nil
	})

	t.Log("the environment takes the next deployment")
	d3 := c.createDeployment("prod", "hello", "v2-again")
	if _, err := c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: d3}); err != nil {
		t.Fatalf("StartDeployment after an abort: %v", err)
	}
	c.waitDeployment(d3, deployed)
	c.checkAnswers("v2")
}
