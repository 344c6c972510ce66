package controlplane

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func TestRollbackCommand(t *testing.T) {
	tc := startController(t, t.TempDir())
	d1 := setup(t, tc, "production", false, "hello", "true")
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgent(t, tc.addr, "fe2", "production", false)
	waitAgents(t, tc, "production", 2)
	d1 = startDeployed(t, tc, d1.Id)

	// v3: the same application with other content, so another release.
	d2 := createVersion(t, tc, "production", "hello", "v3")
	d2 = startDeployed(t, tc, d2.Id)
	if d2.Applications[0].ReleaseId == d1.Applications[0].ReleaseId || d2.Applications[0].PreviousReleaseId != d1.Applications[0].ReleaseId {
		t.Fatalf("v3 = %v", d2.Applications)
	}

	_, err := tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d1.Id})
	wantRefused(t, err, "now runs release", "from deployment "+d2.Id+", not from "+d1.Id)

	// An arm failure on one agent: every agent is disarmed, nobody swaps,
	// and d2 stays DEPLOYED with the error.
	fe2.setFailArm(true)
	if _, err := tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id}); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, tc, d2.Id, "the rollback stopped at arm", func(d *cutoverv1.Deployment) bool { return strings.Contains(d.Error, "rollback stopped at arm") })
	if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || !strings.Contains(got.Error, "agent fe2:") || !strings.Contains(got.Error, "nothing was swapped") {
		t.Fatalf("after an arm failure: state %v, error %q", got.State, got.Error)
	}
	for _, a := range []*fakeAgent{fe1, fe2} {
		waitCond(t, a.name+" disarmed", func() bool { return a.lastSeq("disarm") > a.lastSeq("arm(verify only)") })
		if r := a.runningRelease("hello"); r != d2.Applications[0].ReleaseId {
			t.Errorf("agent %s runs %s after a failed rollback arm, want %s (nothing swapped)", a.name, r, d2.Applications[0].ReleaseId)
		}
		if a.lastSeq("commit") > a.lastSeq("arm(verify only)") {
			t.Errorf("agent %s received a commit after a failed rollback arm: %v", a.name, a.received())
		}
	}

	tc.scrapeUntil(t, `cutover_deployment_rollbacks_total{environment="production",result="failed"} 1`)

	fe2.setFailArm(false)
	got, err = tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id, Reason: "checkout broken"})
	if err != nil || got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || !strings.Contains(lastEvent(got), "the database is NOT rolled back") ||
		!strings.Contains(lastEvent(got), "checkout broken") {
		t.Fatalf("rollback: %v, %v", got, err)
	}
	got = waitFor(t, tc, d2.Id, "ROLLED_BACK", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK))
	for _, a := range got.Agents {
		if a.State != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ROLLED_BACK {
			t.Errorf("agent after the rollback: %v", a)
		}
	}
	// Arm, then commit, the same way as a swap: every agent armed the
	// release that ran before before any agent was told to commit.
	var lastArm, firstCommit int64
	for _, a := range []*fakeAgent{fe1, fe2} {
		arm, commit := a.lastSeq("arm(verify only)"), a.lastSeq("commit")
		if arm == 0 || commit < arm {
			t.Fatalf("agent %s received %v: no rollback arm then commit", a.name, a.received())
		}
		lastArm = max(lastArm, arm)
		if firstCommit == 0 || commit < firstCommit {
			firstCommit = commit
		}
		if r := a.runningRelease("hello"); r != d1.Applications[0].ReleaseId {
			t.Errorf("agent %s runs %s after the rollback, want %s", a.name, r, d1.Applications[0].ReleaseId)
		}
		if slices.Contains(a.received(), "rollback") {
			t.Errorf("agent %s received the per-agent rollback command: %v", a.name, a.received())
		}
	}
	if lastArm > firstCommit {
		t.Errorf("a commit (#%d) was sent before every agent had armed (last arm #%d)", firstCommit, lastArm)
	}
	// Each deployment counts in cutover_deployments_total under each final
	// state it reached: d1 deployed, then rolled back by command; d2
	// deployed (its rollback failed). The rollback by command also has its
	// own counter.
	m := tc.scrapeUntil(t, `cutover_deployment_rollbacks_total{environment="production",result="rolled_back"} 1`)
	for series, want := range map[string]float64{
		`cutover_deployments_total{environment="production",state="deployed"}`:              2,
		`cutover_deployments_total{environment="production",state="rolled_back"}`:           1,
		`cutover_deployment_rollbacks_total{environment="production",result="failed"}`:      1,
		`cutover_deployment_rollbacks_total{environment="production",result="rolled_back"}`: 1,
	} {
		if got := gauge(t, m, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	env, err := tc.admin.GetEnvironment(ctx(t), &cutoverv1.GetEnvironmentRequest{Name: "production"})
	if v := env.GetDeployedVersions()["hello"]; err != nil || v.GetReleaseId() != d1.Applications[0].ReleaseId || v.GetVersionLabel() != "v2" || v.GetDeploymentId() != d1.Id {
		t.Fatalf("deployed_versions after the rollback: %v, %v", env.GetDeployedVersions(), err)
	}
	watchEnds(t, tc, d2.Id)
	// d-1 runs again, but nothing ran before it.
	_, err = tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d1.Id})
	wantRefused(t, err, "ran no release in environment production before deployment "+d1.Id)
	_, err = tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id})
	wantRefused(t, err, "is ROLLED_BACK: only a DEPLOYED deployment can be rolled back")
}

// TestRollbackCommandAcrossRevisions: during an upgrade, a fleet holds
// agents of the previous release (agent protocol revision 0) beside new
// ones. A rollback by command reaches the old agent as the packed
// deployment_id "<id>~rollback.<n>" it journals apart from the
// deployment's own activation (sent as the deployment's id alone, it would
// find that activation committed and answer DONE without swapping back),
// and the new one as deployment_id and rollback_attempt; the old agent's
// packed answers are understood, and the rollback ends ROLLED_BACK.
func TestRollbackCommandAcrossRevisions(t *testing.T) {
	tc := startController(t, t.TempDir())
	d1 := setup(t, tc, "production", false, "hello", "true")
	old := startFakeAgentWith(t, tc.addr, "fe-old", "production", fakeOpts{revision0: true})
	cur := startFakeAgent(t, tc.addr, "fe-new", "production", false)
	waitAgents(t, tc, "production", 2)
	d1 = startDeployed(t, tc, d1.Id)
	d2 := startDeployed(t, tc, createVersion(t, tc, "production", "hello", "v3").Id)

	if _, err := tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tc, d2.Id, "ROLLED_BACK", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK))
	// The rollback's arm and commit are the last two activations each
	// agent received, under the same attempt n > 0.
	rollbackOf := func(a *fakeAgent) []string {
		got := a.receivedActivations()
		if len(got) < 2 {
			t.Fatalf("agent %s received the activations %v", a.name, got)
		}
		return got[len(got)-2:]
	}
	oldGot, curGot := rollbackOf(old), rollbackOf(cur)
	n := strings.TrimSuffix(strings.TrimPrefix(oldGot[0], d2.Id+"~rollback."), "/0")
	if n == "" || n == "0" || oldGot[0] != d2.Id+"~rollback."+n+"/0" || oldGot[1] != oldGot[0] {
		t.Errorf("the revision 0 agent got the rollback's arm and commit as %v, want %q twice", oldGot, d2.Id+"~rollback.<n>/0")
	}
	if want := d2.Id + "/" + n; curGot[0] != want || curGot[1] != want {
		t.Errorf("the revision 1 agent got the rollback's arm and commit as %v, want %q twice", curGot, want)
	}
	for _, a := range []*fakeAgent{old, cur} {
		if r := a.runningRelease("hello"); r != d1.Applications[0].ReleaseId {
			t.Errorf("agent %s runs %s after the rollback, want %s", a.name, r, d1.Applications[0].ReleaseId)
		}
	}
}

// waitCond waits until cond holds, for up to 20 seconds.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := poll.True(context.Background(), 20*time.Second, what, cond); err != nil {
		t.Fatal(err)
	}
}
