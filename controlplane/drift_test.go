package controlplane

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// A front-end that reports running another release than the environment
// records is drifted (ListAgents, cutover_agent_drifted); reconcile brings
// it, and only it, back: it stages the release it lacks, then swaps; the
// environment's records do not change.
func TestDriftAndReconcile(t *testing.T) {
	tc := startController(t, t.TempDir())
	d1 := setup(t, tc, "production", false, "hello", "true")
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgent(t, tc.addr, "fe2", "production", false)
	waitAgents(t, tc, "production", 2)
	d1 = startDeployed(t, tc, d1.Id)
	d2 := createVersion(t, tc, "production", "hello", "v3")
	d2 = startDeployed(t, tc, d2.Id)
	v1, v3 := d1.Applications[0].ReleaseId, d2.Applications[0].ReleaseId

	if got := driftedAgents(t, tc); len(got) != 0 {
		t.Fatalf("drifted after two deployments: %v", got)
	}
	tc.scrapeUntil(t, `cutover_agent_drifted{agent="fe2",environment="production"} 0`)
	res, err := tc.admin.ReconcileEnvironment(ctx(t), &cutoverv1.ReconcileEnvironmentRequest{Environment: "production"})
	if err != nil || res.Deployment != nil || len(res.Agents) != 0 {
		t.Fatalf("reconcile with nothing drifted: %v, %v", res, err)
	}

	// fe2's current is set back to v1 by hand, and v3 is gone from it; it
	// reports so when it reconnects.
	fe2.stop()
	fe2.mu.Lock()
	fe2.running["hello"] = v1
	fe2.staged["hello"] = slices.DeleteFunc(fe2.staged["hello"], func(id string) bool { return id == v3 })
	fe2.mu.Unlock()
	fe2.start(t)
	want := fmt.Sprintf("hello: runs %s, recorded %s", v1[:12], v3[:12])
	waitDrift(t, tc, map[string]string{"fe2": want})
	tc.scrapeUntil(t, `cutover_agent_drifted{agent="fe2",environment="production"} 1`)
	m := tc.scrape(t)
	if !strings.Contains(m, "\n"+`cutover_agent_drifted{agent="fe1",environment="production"} 0`+"\n") {
		t.Errorf("fe1 is not drifted, the metric says otherwise:\n%s", m)
	}

	fe1Commits := len(slicesOf(fe1.received(), "commit"))
	res, err = tc.admin.ReconcileEnvironment(ctx(t), &cutoverv1.ReconcileEnvironmentRequest{Environment: "production", Reason: "fe2 restored from a backup"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployment == nil || !slices.Equal(res.Agents, []string{"fe2"}) || len(res.NotConnected) != 0 {
		t.Fatalf("reconcile: %v", res)
	}
	rd := res.Deployment
	if rd.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING || len(rd.Agents) != 1 || rd.Agents[0].Name != "fe2" ||
		len(rd.Applications) != 1 || rd.Applications[0].ReleaseId != v3 {
		t.Fatalf("reconcile deployment: %v", rd)
	}
	if h := rd.History; len(h) == 0 || !slices.ContainsFunc(h, func(x *cutoverv1.DeploymentTransition) bool {
		return strings.Contains(x.Message, "reconcile requested by") && strings.Contains(x.Message, want) && strings.Contains(x.Message, "fe2 restored from a backup")
	}) {
		t.Errorf("reconcile history: %v", h)
	}
	// While it activates, nothing else may start in the environment.
	_, err = tc.admin.ReconcileEnvironment(ctx(t), &cutoverv1.ReconcileEnvironmentRequest{Environment: "production"})
	if err == nil {
		if d, _ := tc.admin.GetDeployment(ctx(t), &cutoverv1.GetDeploymentRequest{Id: rd.Id}); d.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING {
			t.Errorf("a second reconcile while %s activates was accepted", rd.Id)
		}
	}
	waitFor(t, tc, rd.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	if r := fe2.runningRelease("hello"); r != v3 {
		t.Errorf("fe2 runs %s after reconcile, want %s", r, v3)
	}
	if got := fe2.received(); !slices.Contains(got, "arm") || !slices.Contains(got, "commit") {
		t.Errorf("fe2 received %v: want arm (staging what it lacks), then commit", got)
	}
	if n := len(slicesOf(fe1.received(), "commit")); n != fe1Commits {
		t.Errorf("fe1, not drifted, received a commit from the reconcile: %v", fe1.received())
	}
	waitDrift(t, tc, nil)
	tc.scrapeUntil(t, `cutover_agent_drifted{agent="fe2",environment="production"} 0`)

	env, err := tc.admin.GetEnvironment(ctx(t), &cutoverv1.GetEnvironmentRequest{Name: "production"})
	if v := env.GetDeployedVersions()["hello"]; err != nil || v.GetReleaseId() != v3 || v.GetDeploymentId() != d2.Id {
		t.Fatalf("deployed_versions after reconcile: %v, %v; want %s from %s, unchanged", env.GetDeployedVersions(), err, v3[:12], d2.Id)
	}
	// The deployment that brought v3 can still be rolled back.
	if _, err := tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id}); err != nil {
		t.Fatalf("rollback of %s after a reconcile: %v", d2.Id, err)
	}
	waitFor(t, tc, d2.Id, "ROLLED_BACK", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK))
	waitDrift(t, tc, nil)
}

// A reconcile whose arm fails ends FAILED, not PREPARED: nothing swapped,
// the front-end still drifts, and a new reconcile may run.
func TestReconcileArmFailureFails(t *testing.T) {
	tc := startController(t, t.TempDir())
	d1 := setup(t, tc, "production", false, "hello", "true")
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	d1 = startDeployed(t, tc, d1.Id)
	fe1.stop()
	fe1.mu.Lock()
	fe1.running["hello"] = ""
	fe1.mu.Unlock()
	fe1.setFailArm(true)
	fe1.start(t)
	waitDrift(t, tc, map[string]string{"fe1": "hello: runs nothing, recorded " + d1.Applications[0].ReleaseId[:12]})
	res, err := tc.admin.ReconcileEnvironment(ctx(t), &cutoverv1.ReconcileEnvironmentRequest{Environment: "production"})
	if err != nil || res.Deployment == nil {
		t.Fatalf("reconcile: %v, %v", res, err)
	}
	got := waitFor(t, tc, res.Deployment.Id, "FAILED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED))
	if !strings.Contains(got.Error, "env reconcile production` again") || strings.Contains(got.Error, "PREPARED again") {
		t.Errorf("error of a failed reconcile: %q", got.Error)
	}
	waitReceived(t, fe1, "disarm")
	fe1.setFailArm(false)
	res, err = tc.admin.ReconcileEnvironment(ctx(t), &cutoverv1.ReconcileEnvironmentRequest{Environment: "production"})
	if err != nil || res.Deployment == nil {
		t.Fatalf("reconcile again: %v, %v", res, err)
	}
	waitFor(t, tc, res.Deployment.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	waitDrift(t, tc, nil)
}

// waitDrift waits until ListAgents says exactly want (agent → drift) of
// production's agents.
func waitDrift(t *testing.T, tc *testController, want map[string]string) {
	t.Helper()
	var got map[string]string
	err := poll.Until(context.Background(), 20*time.Second, func() error {
		got = driftedAgents(t, tc)
		if fmt.Sprint(got) != fmt.Sprint(want) && !(len(got) == 0 && len(want) == 0) {
			return fmt.Errorf("drifted agents %v, want %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// driftedAgents returns production's drifted agents and how they drift.
func driftedAgents(t *testing.T, tc *testController) map[string]string {
	t.Helper()
	resp, err := tc.admin.ListAgents(ctx(t), &cutoverv1.ListAgentsRequest{Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range resp.Agents {
		if a.Drifted != (a.Drift != "") {
			t.Errorf("agent %s: drifted %v with drift %q", a.Name, a.Drifted, a.Drift)
		}
		if a.Drifted {
			out[a.Name] = a.Drift
		}
	}
	return out
}

// slicesOf returns the elements of s equal to v.
func slicesOf(s []string, v string) []string {
	return slices.DeleteFunc(slices.Clone(s), func(x string) bool { return x != v })
}
