package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

const (
	planned    = cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED
	prepared   = cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED
	deployed   = cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED
	failed     = cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED
	rolledBack = cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK
)

// releaseFiles are the files of examples/hello that its build output (".")
// holds unchanged.
var releaseFiles = []string{"VERSION", "cutover.yaml", "main.go", "go.mod", "README.md"}

// TestTwoStageDeployment walks issue 2's path with one controller and three
// agents: v1 in a single stage; v2 prepared (nothing running changes, the
// release is on disk byte for byte), the controller killed and restarted,
// then continued; a release whose health check fails rolled back everywhere.
func TestTwoStageDeployment(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")

	c.createEnv("demo", true)
	c.startAgents("demo", "fe-1", "fe-2", "fe-3")
	if name := c.registerApp(src); name != "hello" {
		t.Fatalf("RegisterApplication named the app %q, want hello (from cutover.yaml)", name)
	}

	t.Log("v1, single stage")
	d1 := c.createDeployment("demo", "hello", "v1")
	if _, err := c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: d1}); err != nil {
		t.Fatalf("StartDeployment(%s): %v", d1, err)
	}
	v1 := releaseOf(t, c.waitDeployment(d1, deployed))
	c.checkCurrent("hello", v1)
	c.checkAnswers("v1")
	if t.Failed() {
		t.FailNow()
	}

	t.Log("v2, stage 1: nothing running changes")
	writeVersion(t, src, "v2")
	d2 := c.createDeployment("demo", "hello", "v2")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d2}); err != nil {
		t.Fatalf("PrepareDeployment(%s): %v", d2, err)
	}
	dep2 := c.waitDeployment(d2, prepared)
	v2 := releaseOf(t, dep2)
	if v2 == v1 {
		t.Fatalf("v1 and v2 have the same release id %s", v1)
	}
	for _, a := range dep2.GetAgents() {
		if a.GetState() != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED {
			t.Errorf("PREPARED deployment: agent %s is %s, want STAGED", a.GetName(), a.GetState())
		}
	}
	for _, a := range dep2.GetAgents() {
		// v1's chunks are on the agent already: only what changed travels.
		if a.GetTransferredBytes() <= 0 || a.GetTransferredBytes() >= a.GetReleaseBytes() {
			t.Errorf("agent %s received %d bytes of a %d-byte release that shares most chunks with v1",
				a.GetName(), a.GetTransferredBytes(), a.GetReleaseBytes())
		}
	}
	if len(dep2.GetAgents()) != len(c.Agents) {
		t.Errorf("PREPARED deployment lists %d agents, want %d", len(dep2.GetAgents()), len(c.Agents))
	}
	c.checkCurrent("hello", v1)
	c.checkAnswers("v1")
	c.checkMaterialized(src, "hello", v2)
	c.waitStaged("demo", "hello", v1, v2)

	// While d2 is PREPARED, the environment takes no other deployment, and
	// continue refuses a deployment that is not PREPARED.
	c.checkSecondDeploymentRefused(d2)
	_, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d1})
	wantStatus(t, "ContinueDeployment of a DEPLOYED deployment", err, codes.FailedPrecondition, "DEPLOYED")
	if t.Failed() {
		t.FailNow()
	}

	t.Log("the controller dies (kill -9) with d2 PREPARED and comes back")
	c.checkSurvivesRestart(d2)
	c.waitAgentsConnected("demo")

	t.Log("v2, stage 2")
	if _, err := c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d2}); err != nil {
		t.Fatalf("ContinueDeployment(%s): %v", d2, err)
	}
	dep2 = c.waitDeployment(d2, deployed)
	c.checkCurrent("hello", v2)
	c.checkAnswers("v2")
	if dep2.GetActivationSpread() == nil || dep2.GetActivateTime() == nil || dep2.GetFinishTime() == nil {
		t.Errorf("DEPLOYED deployment lacks activation_spread, activate_time or finish_time:\n%s", asJSON(dep2))
	} else {
		t.Logf("stage 2 took %s, activation spread %s",
			dep2.GetFinishTime().AsTime().Sub(dep2.GetActivateTime().AsTime()), dep2.GetActivationSpread().AsDuration())
	}

	t.Log("a DEPLOYED deployment survives a restart too")
	c.checkSurvivesRestart(d2)
	c.waitAgentsConnected("demo")

	t.Log("v3 fails its health check after the swap: every agent goes back to v2")
	writeVersion(t, src, "v3-unhealthy")
	d3 := c.createDeployment("demo", "hello", "v3-unhealthy")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d3}); err != nil {
		t.Fatalf("PrepareDeployment(%s): %v", d3, err)
	}
	c.waitDeployment(d3, prepared)
	// Through cutoverctl this time: --wait must fail and say why.
	code, out, errOut := c.ctl("deploy", "continue", d3, "--wait")
	if code == 0 || !strings.Contains(errOut, "ended ROLLED_BACK") {
		t.Errorf("cutoverctl deploy continue %s --wait: exit %d, stderr:\n%s\nwant non-zero and 'ended ROLLED_BACK'", d3, code, errOut)
	}
	if !strings.Contains(errOut, "ACTIVATING") || !strings.Contains(out, "ROLLED_BACK") {
		t.Errorf("cutoverctl deploy continue %s --wait: want progress on stderr and the final table on stdout:\n%s\n%s", d3, errOut, out)
	}
	dep3 := c.waitDeployment(d3, rolledBack)
	code, out, errOut = c.ctl("deploy", "watch", d3)
	if code != 0 || !strings.Contains(out, "ROLLED_BACK") {
		t.Errorf("cutoverctl deploy watch %s of a finished deployment: exit %d\n%s%s", d3, code, out, errOut)
	}
	if dep3.GetError() == "" {
		t.Errorf("ROLLED_BACK deployment has no error:\n%s", asJSON(dep3))
	}
	c.checkCurrent("hello", v2)
	c.checkAnswers("v2")
	c.waitStaged("demo", "hello", v2, "")
	t.Log("done")
}

// createDeployment plans a deployment of one app version and returns its id.
func (c *cluster) createDeployment(env, app, label string) string {
	c.t.Helper()
	d, err := c.Admin.CreateDeployment(context.Background(), &cutoverv1.CreateDeploymentRequest{
		Environment:  env,
		Applications: []*cutoverv1.ApplicationVersion{{Name: app, VersionLabel: label}},
	})
	if err != nil {
		c.t.Fatalf("CreateDeployment(%s %s=%s): %v", env, app, label, err)
	}
	if d.GetState() != planned || !strings.HasPrefix(d.GetId(), "d-") {
		c.t.Fatalf("CreateDeployment returned %s in %s, want d-N PLANNED", d.GetId(), d.GetState())
	}
	return d.GetId()
}

// releaseOf returns the release id of a deployment's only application.
func releaseOf(t *testing.T, d *cutoverv1.Deployment) string {
	t.Helper()
	if len(d.GetApplications()) != 1 || d.GetApplications()[0].GetReleaseId() == "" {
		t.Fatalf("deployment %s has no release id:\n%s", d.GetId(), asJSON(d))
	}
	return d.GetApplications()[0].GetReleaseId()
}

// checkMaterialized compares, on every agent, the release directory of
// releaseID with the app's source files, byte for byte and mode for mode,
// and checks that the built binary is there and executable.
func (c *cluster) checkMaterialized(src, app, releaseID string) {
	c.t.Helper()
	for _, a := range c.Agents {
		dir := filepath.Join(a.Root, app, "releases", releaseID)
		for _, name := range releaseFiles {
			want, err := os.ReadFile(filepath.Join(src, name))
			if err != nil {
				c.t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				c.t.Errorf("agent %s: %v", a.Name, err)
				continue
			}
			if string(got) != string(want) {
				c.t.Errorf("agent %s: %s differs from the source (%d bytes, want %d)", a.Name, filepath.Join(dir, name), len(got), len(want))
			}
			srcInfo, _ := os.Stat(filepath.Join(src, name))
			gotInfo, _ := os.Stat(filepath.Join(dir, name))
			if want := srcInfo.Mode().Perm() &^ 0o222; gotInfo.Mode().Perm() != want { // staged releases are read-only
				c.t.Errorf("agent %s: %s has mode %s, want %s (the source's, read-only)", a.Name, name, gotInfo.Mode().Perm(), want)
			}
		}
		info, err := os.Stat(filepath.Join(dir, "bin", "hello"))
		if err != nil {
			c.t.Errorf("agent %s: built binary: %v", a.Name, err)
		} else if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 || info.Size() == 0 {
			c.t.Errorf("agent %s: bin/hello is %s, %d bytes; want an executable file", a.Name, info.Mode(), info.Size())
		}
	}
}

// waitStaged waits until ListAgents shows, on every agent, app running
// running and staged among its staged releases ("" for either: any).
func (c *cluster) waitStaged(env, app, running, staged string) {
	c.t.Helper()
	c.waitFor(deployDeadline, "ListAgents shows the staged release", func() error {
		resp, err := c.Admin.ListAgents(context.Background(), &cutoverv1.ListAgentsRequest{Environment: env})
		if err != nil {
			return err
		}
		if len(resp.GetAgents()) != len(c.Agents) {
			return fmt.Errorf("%d agents listed, want %d", len(resp.GetAgents()), len(c.Agents))
		}
		for _, a := range resp.GetAgents() {
			var found bool
			for _, ap := range a.GetApplications() {
				if ap.GetName() != app {
					continue
				}
				found = true
				if (running != "" && ap.GetRunningReleaseId() != running) || (staged != "" && !slices.Contains(ap.GetStagedReleaseIds(), staged)) {
					return fmt.Errorf("agent %s: running %s staged %v; want running %s, %s staged",
						a.GetName(), ap.GetRunningReleaseId(), ap.GetStagedReleaseIds(), running, staged)
				}
			}
			if !found {
				return fmt.Errorf("agent %s does not report %s", a.GetName(), app)
			}
		}
		return nil
	})
}

// checkSecondDeploymentRefused checks that, while inFlight is PREPARED, a
// second deployment of the same environment cannot start stage 1 and that
// the refusal names inFlight.
func (c *cluster) checkSecondDeploymentRefused(inFlight string) {
	c.t.Helper()
	ctx := context.Background()
	d, err := c.Admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{
		Environment:  "demo",
		Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "other"}},
	})
	if err != nil {
		// Refusing at creation is allowed too.
		wantStatus(c.t, "CreateDeployment while "+inFlight+" is PREPARED", err, codes.FailedPrecondition, inFlight)
		return
	}
	_, err = c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d.GetId()})
	wantStatus(c.t, "PrepareDeployment while "+inFlight+" is PREPARED", err, codes.FailedPrecondition, inFlight)
	_, err = c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: d.GetId()})
	wantStatus(c.t, "StartDeployment while "+inFlight+" is PREPARED", err, codes.FailedPrecondition, inFlight)
	got, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d.GetId()})
	if err != nil || got.GetState() != planned {
		c.t.Errorf("refused deployment %s: state %s (%v), want PLANNED unchanged", d.GetId(), got.GetState(), err)
	}
	if _, err := c.Admin.AbortDeployment(ctx, &cutoverv1.AbortDeploymentRequest{Id: d.GetId(), Reason: "e2e: refused"}); err != nil {
		c.t.Errorf("AbortDeployment(%s) of a PLANNED deployment: %v", d.GetId(), err)
	}
}

// checkSurvivesRestart kills the controller with SIGKILL, starts it again
// on the same data dir, and checks that deployment id and the list of
// deployments are exactly as they were.
func (c *cluster) checkSurvivesRestart(id string) {
	c.t.Helper()
	ctx := context.Background()
	before, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
	if err != nil {
		c.t.Fatal(err)
	}
	listBefore, err := c.Admin.ListDeployments(ctx, &cutoverv1.ListDeploymentsRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.restartController()
	after, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
	if err != nil {
		c.t.Fatalf("GetDeployment(%s) after restart: %v", id, err)
	}
	if !proto.Equal(before, after) {
		c.t.Errorf("deployment %s changed across a controller restart:\nbefore:\n%s\nafter:\n%s", id, asJSON(before), asJSON(after))
	}
	listAfter, err := c.Admin.ListDeployments(ctx, &cutoverv1.ListDeploymentsRequest{})
	if err != nil {
		c.t.Fatalf("ListDeployments after restart: %v", err)
	}
	if !proto.Equal(listBefore, listAfter) {
		c.t.Errorf("ListDeployments changed across a controller restart:\nbefore:\n%s\nafter:\n%s", asJSON(listBefore), asJSON(listAfter))
	}
}

// wantStatus fails the test unless err is a gRPC status with code whose
// message contains every one of words.
func wantStatus(t *testing.T, what string, err error, code codes.Code, words ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code {
		t.Errorf("%s: got %v, want %s", what, err, code)
		return
	}
	for _, w := range words {
		if !strings.Contains(st.Message(), w) {
			t.Errorf("%s: message %q does not name %q", what, st.Message(), w)
		}
	}
}
