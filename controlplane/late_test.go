package controlplane

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// historyText joins d's history messages.
func historyText(d *cutoverv1.Deployment) string {
	var out []string
	for _, h := range d.History {
		out = append(out, h.State.String()+": "+h.Message)
	}
	return strings.Join(out, "\n")
}

func agentOf(d *cutoverv1.Deployment, name string) *cutoverv1.DeploymentAgent {
	for _, a := range d.Agents {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// TestOfflineFrontEndStagedInBackground: a front-end that is offline
// during prepare is named by PREPARED; when it connects it is staged at
// once, in the background, so that continue only arms and commits there.
func TestOfflineFrontEndStagedInBackground(t *testing.T) {
	tc := startController(t, t.TempDir())
	d := setup(t, tc, "production", true, "hello", "true")
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgent(t, tc.addr, "fe2", "production", false)
	waitAgents(t, tc, "production", 2)
	fe2.stop()
	waitAgents(t, tc, "production", 1)

	got := prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	mustMention(t, "the PREPARED transition", lastEvent(got), "PREPARED on 1 of 2 front-ends", "fe2 not connected since 20")

	fe2.start(t)
	got = waitFor(t, tc, d.Id, "fe2 staged in the background", func(d *cutoverv1.Deployment) bool {
		a := agentOf(d, "fe2")
		return a != nil && a.State == cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED
	})
	if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED {
		t.Fatalf("state %s while staging in the background", got.State)
	}
	mustMention(t, "the history", historyText(got), "front-end fe2 connected while PREPARED", "front-end fe2 staged in the background",
		"PREPARED on 2 of 2 front-ends: every one has the releases staged")
	if a := agentOf(got, "fe2"); a.TransferredBytes == 0 || a.TransferredBytes != a.ReleaseBytes {
		t.Errorf("fe2 transferred %d of %d bytes in the background", a.TransferredBytes, a.ReleaseBytes)
	}

	// Connected, it cannot be removed.
	if _, err := tc.admin.RemoveAgent(ctx(t), &cutoverv1.RemoveAgentRequest{Environment: "production", Name: "fe2"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("remove a connected agent: %v, want FailedPrecondition", err)
	}

	// With require_prepared nothing is in the way: every front-end is staged.
	if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id, RequirePrepared: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tc, d.Id, "DEPLOYED", isFinalOr(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	for a, want := range map[*fakeAgent]string{fe1: "stage,arm(verify only),commit", fe2: "stage,arm(verify only),commit"} {
		if got := received(a); got != want {
			t.Errorf("%s received %s, want %s", a.name, got, want)
		}
	}
}

// TestEnvironmentRequirePrepared: with the environment's require_prepared,
// a plain continue refuses to stage inside the window, naming the
// front-end whose staging in the background has not ended; nothing changes.
func TestEnvironmentRequirePrepared(t *testing.T) {
	tc := startController(t, t.TempDir())
	d := setup(t, tc, "production", true, "hello", "true")
	if _, err := tc.admin.UpdateEnvironment(ctx(t), &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "production", RequirePrepared: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"require_prepared"}}}); err != nil {
		t.Fatal(err)
	}
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	fe2 := startFakeAgentWith(t, tc.addr, "fe2", "production", fakeOpts{unansweredStages: 1})
	waitReceived(t, fe2, "stage(unanswered)")

	_, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "fe2 (release") || !strings.Contains(err.Error(), "it stays PREPARED") {
		t.Fatalf("continue in an environment with require_prepared = %v, want FailedPrecondition naming fe2", err)
	}
	got, _ := tc.admin.GetDeployment(ctx(t), &cutoverv1.GetDeploymentRequest{Id: d.Id})
	if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED || got.ActivateTime != nil || slices.Contains(fe1.received(), "arm") {
		t.Fatalf("after the refusal: %s, activate_time %v, fe1 received %v", got.State, got.ActivateTime, fe1.received())
	}
	env, err := tc.admin.GetEnvironment(ctx(t), &cutoverv1.GetEnvironmentRequest{Name: "production"})
	if err != nil || !env.RequirePrepared {
		t.Fatalf("environment: %v, %v", env, err)
	}
}

// TestRemoveGoneAgent: a front-end that staged and went away for good
// blocks continue until it is removed; removed, it leaves agent list and
// the readiness check, and continue deploys on the others.
func TestRemoveGoneAgent(t *testing.T) {
	tc := startController(t, t.TempDir())
	d := setup(t, tc, "production", true, "hello", "true")
	startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgent(t, tc.addr, "fe2", "production", false)
	waitAgents(t, tc, "production", 2)
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	fe2.stop()
	waitAgents(t, tc, "production", 1)

	_, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "agent fe2 is not connected") || !strings.Contains(err.Error(), "agent remove") {
		t.Fatalf("continue with fe2 gone = %v, want FailedPrecondition naming fe2", err)
	}
	// A deployer may not remove agents.
	deployer := tc.as(t, "dave", cutoverv1.Role_ROLE_DEPLOYER)
	if _, err := deployer.RemoveAgent(ctx(t), &cutoverv1.RemoveAgentRequest{Environment: "production", Name: "fe2"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("remove by a deployer: %v, want PermissionDenied", err)
	}
	removed, err := tc.admin.RemoveAgent(ctx(t), &cutoverv1.RemoveAgentRequest{Environment: "production", Name: "fe2"})
	if err != nil || removed.Name != "fe2" || removed.Connected {
		t.Fatalf("remove fe2: %v, %v", removed, err)
	}
	list, err := tc.admin.ListAgents(ctx(t), &cutoverv1.ListAgentsRequest{Environment: "production"})
	if err != nil || len(list.Agents) != 1 || list.Agents[0].Name != "fe1" {
		t.Fatalf("agents after the removal: %v, %v", list, err)
	}
	if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id}); err != nil {
		t.Fatalf("continue after the removal: %v", err)
	}
	dep := waitFor(t, tc, d.Id, "DEPLOYED", isFinalOr(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	if dep.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || len(dep.Agents) != 1 {
		t.Fatalf("deployment after the removal: %s, agents %v", dep.State, dep.Agents)
	}
	// The audit log has the removal.
	err = poll.Until(context.Background(), 10*time.Second, func() error {
		ev, err := tc.admin.ListAuditEvents(ctx(t), &cutoverv1.ListAuditEventsRequest{Environment: "production"})
		if err == nil && !slices.ContainsFunc(ev.Events, func(e *cutoverv1.AuditEvent) bool { return strings.HasSuffix(e.Method, "RemoveAgent") }) {
			err = status.Error(codes.NotFound, "no RemoveAgent audit entry")
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}
