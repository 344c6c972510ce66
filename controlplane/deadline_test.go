package controlplane

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// setDeadlines sets env's stage 2 deadlines.
func setDeadlines(t *testing.T, tc *testController, env string, dl *cutoverv1.Stage2Deadlines) {
	t.Helper()
	if _, err := tc.admin.UpdateEnvironment(ctx(t), &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: env, Stage2Deadlines: dl},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"stage2_deadlines"}}}); err != nil {
		t.Fatal(err)
	}
}

// TestCommitDeadline: an agent that never answers commit (it went away
// right after receiving it) does not hold stage 2: once the commit
// deadline passes, the agent that swapped rolls back and the deployment
// ends ROLLED_BACK naming the silent one; the environment is free; and
// when the silent one comes back it is rolled back too.
func TestCommitDeadline(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC))
	tc := startControllerWithClock(t, t.TempDir(), clock.Now)
	d := setup(t, tc, "production", true, "hello", "true")
	setDeadlines(t, tc, "production", &cutoverv1.Stage2Deadlines{Commit: durationpb.New(30 * time.Second)})
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgent(t, tc.addr, "fe2", "production", false)
	waitAgents(t, tc, "production", 2)
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)

	fe2.leaveUnanswered("commit", 1)
	if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id}); err != nil {
		t.Fatal(err)
	}
	waitReceived(t, fe2, "commit(unanswered)")
	got := waitFor(t, tc, d.Id, "fe1 committed", func(d *cutoverv1.Deployment) bool {
		return agentOf(d, "fe1").GetState() == cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ACTIVE
	})
	start := clock.Now()
	if got.GetStep() != "commit" || !got.GetStepDeadline().AsTime().Equal(start.Add(30*time.Second)) ||
		got.GetStage2Deadlines().GetCommit().AsDuration() != 30*time.Second || got.GetStage2Deadlines().GetArm().AsDuration() != 10*time.Minute {
		t.Fatalf("step %q ends by %v, deadlines %v", got.GetStep(), got.GetStepDeadline().AsTime(), got.GetStage2Deadlines())
	}
	fe2.stop() // gone: it cannot answer

	tc.tick(clock, start.Add(29*time.Second))
	if got := waitFor(t, tc, d.Id, "still ACTIVATING", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING)); got.GetStep() != "commit" {
		t.Fatalf("before the deadline: step %q", got.GetStep())
	}
	tc.tick(clock, start.Add(30*time.Second))
	got = waitFor(t, tc, d.Id, "ROLLED_BACK", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK))
	for _, want := range []string{"agent fe2: no answer to commit within the commit deadline (30s)", "unreachable: fe2", "went back to the previous release"} {
		if !strings.Contains(got.GetError(), want) {
			t.Errorf("error %q lacks %q", got.GetError(), want)
		}
	}
	if a := agentOf(got, "fe2"); a.GetUnanswered() != "commit" {
		t.Errorf("fe2 = %v, want unanswered commit", a)
	}
	waitReceived(t, fe1, "rollback")

	// The environment is free: a new deployment prepares.
	d2, err := tc.admin.CreateDeployment(ctx(t), &cutoverv1.CreateDeploymentRequest{Environment: "production",
		Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: "v2"}}})
	if err != nil {
		t.Fatal(err)
	}
	prepare(t, tc, d2.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)

	// fe2 comes back: it is rolled back to the outcome.
	fe2.start(t)
	waitReceived(t, fe2, "rollback")
	got = waitFor(t, tc, d.Id, "fe2 brought to the outcome", func(d *cutoverv1.Deployment) bool { return agentOf(d, "fe2").GetUnanswered() == "" })
	if !strings.Contains(lastEvent(got), "front-end fe2, which had not answered commit, came back and was rolled back") ||
		got.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK ||
		agentOf(got, "fe2").GetState() != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ROLLED_BACK {
		t.Fatalf("after fe2 came back: %v", got)
	}
}

// TestForceAbort: an operator ends a stage 2 stuck at arm (an agent that
// never answers) with abort --force: it is PREPARED again, naming the
// agent; a plain abort then ends it. Without a reason, force is refused.
func TestForceAbort(t *testing.T) {
	tc := startController(t, t.TempDir())
	d := setup(t, tc, "production", true, "hello", "true")
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	startFakeAgent(t, tc.addr, "fe2", "production", false)
	waitAgents(t, tc, "production", 2)
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)

	fe1.leaveUnanswered("arm", 1)
	if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id}); err != nil {
		t.Fatal(err)
	}
	waitReceived(t, fe1, "arm(unanswered)")
	_, err := tc.admin.AbortDeployment(ctx(t), &cutoverv1.AbortDeploymentRequest{Id: d.Id})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("abort without force while ACTIVATING: %v", err)
	}
	_, err = tc.admin.AbortDeployment(ctx(t), &cutoverv1.AbortDeploymentRequest{Id: d.Id, Force: true})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("abort --force without a reason: %v", err)
	}
	got, err := tc.admin.AbortDeployment(ctx(t), &cutoverv1.AbortDeploymentRequest{Id: d.Id, Force: true, Reason: "fe1 hangs"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED ||
		!strings.Contains(lastEvent(got), "agent fe1: no answer to arm when alice ended stage 2 (abort --force: fe1 hangs)") {
		t.Fatalf("after abort --force at arm: %v", got)
	}
	waitReceived(t, fe1, "disarm")
	got, err = tc.admin.AbortDeployment(ctx(t), &cutoverv1.AbortDeploymentRequest{Id: d.Id, Reason: "for good"})
	if err != nil || got.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ABORTED {
		t.Fatalf("abort after: %v, %v", got, err)
	}
}
