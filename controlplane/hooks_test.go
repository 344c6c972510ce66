package controlplane

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// The hooks of these tests: suspend and resume the scheduler on one
// scheduler front-end, smoke-test every front-end.
const schedulerHooks = `hooks:
  before_activate: [{command: console scheduler:suspend, on: once, labels: {role: scheduler}}]
  validate: [{command: smoke-test}]
  after_activate: [{command: console scheduler:resume, on: once, labels: {role: scheduler}}]
`

var scheduler = map[string]string{"role": "scheduler"}

// setupHooks is setup with extra lines in the app's cutover.yaml; it
// prepares the deployment with the given agents connected.
func setupHooks(t *testing.T, tc *testController, extra string, agents ...*fakeAgent) *cutoverv1.Deployment {
	t.Helper()
	d := setup(t, tc, "production", true, "hello", "echo built > BUILT")
	app, err := tc.admin.GetApplication(ctx(t), &cutoverv1.GetApplicationRequest{Name: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(app.SourceDir, "cutover.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitAgents(t, tc, "production", len(agents))
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	return d
}

func received(a *fakeAgent) string { return strings.Join(a.received(), ",") }

// TestHooksOnceEachAndLabels: the once hooks run on the first scheduler
// front-end by name, the each hook on every front-end, in stage 2's
// order, and deploy get shows each agent's hook results.
func TestHooksOnceEachAndLabels(t *testing.T) {
	tc := startController(t, t.TempDir())
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgentWith(t, tc.addr, "fe2", "production", fakeOpts{labels: scheduler})
	fe3 := startFakeAgentWith(t, tc.addr, "fe3", "production", fakeOpts{labels: scheduler})
	d := setupHooks(t, tc, schedulerHooks, fe1, fe2, fe3)
	dep := continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)

	for a, want := range map[*fakeAgent]string{
		fe1: "stage,arm,commit,validate:hello#0",
		fe2: "stage,arm,before_activate:hello#0,commit,validate:hello#0,after_activate:hello#0",
		fe3: "stage,arm,commit,validate:hello#0",
	} {
		if got := received(a); got != want {
			t.Errorf("%s received %s, want %s", a.name, got, want)
		}
	}
	for _, a := range dep.Agents {
		var kinds []string
		for _, h := range a.Hooks {
			kinds = append(kinds, h.Kind.String())
			if h.Output == "" || h.Error != "" || h.Duration == nil {
				t.Errorf("agent %s hook %v: want output, no error, a duration", a.Name, h)
			}
		}
		want := map[string]int{"fe1": 1, "fe2": 3, "fe3": 1}[a.Name]
		if len(a.Hooks) != want {
			t.Errorf("agent %s has hook results %v, want %d", a.Name, kinds, want)
		}
	}
	if dep.ArmDuration == nil || dep.HooksDuration == nil || dep.ActivationSpread == nil {
		t.Errorf("deployed without arm/hooks durations or spread: arm %v hooks %v spread %v", dep.ArmDuration, dep.HooksDuration, dep.ActivationSpread)
	}
}

// TestBeforeActivateFailureResumes: a before_activate hook fails on one
// scheduler front-end: stage 2 stops before the SQL, nobody is sent
// commit, every agent is disarmed, and the after_activate hooks run where
// before_activate ran (both scheduler front-ends), so no scheduler stays
// suspended. Nothing changed: the deployment is PREPARED again, and once
// the hook passes, continue again deploys it.
func TestBeforeActivateFailureResumes(t *testing.T) {
	tc := startController(t, t.TempDir())
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgentWith(t, tc.addr, "fe2", "production", fakeOpts{labels: scheduler, failHooks: map[string]bool{"before_activate": true}})
	fe3 := startFakeAgentWith(t, tc.addr, "fe3", "production", fakeOpts{labels: scheduler})
	d := setupHooks(t, tc, `hooks:
  before_activate: [{command: suspend, labels: {role: scheduler}}]
  after_activate: [{command: resume, labels: {role: scheduler}}]
`, fe1, fe2, fe3)
	dep := continueBack(t, tc, d.Id)
	mustMention(t, "the failure", lastEvent(dep), "before_activate hook failed", "agent fe2", "nothing was swapped", "after_activate hooks ran")
	for _, a := range []*fakeAgent{fe1, fe2, fe3} {
		waitReceived(t, a, "disarm")
	}
	for a, want := range map[*fakeAgent]string{
		fe1: "stage,arm,disarm",
		fe2: "stage,arm,before_activate:hello#0,after_activate:hello#0,disarm",
		fe3: "stage,arm,before_activate:hello#0,after_activate:hello#0,disarm",
	} {
		if got := received(a); got != want {
			t.Errorf("%s received %s, want %s", a.name, got, want)
		}
	}
	for _, a := range dep.Agents {
		if a.SwapTime != nil {
			t.Errorf("agent %s swapped", a.Name)
		}
		if a.Name == "fe2" && (len(a.Hooks) != 2 || a.Hooks[0].ExitCode != 1 || a.Hooks[0].Error == "") {
			t.Errorf("fe2's hook results = %v, want the failed before_activate then after_activate", a.Hooks)
		}
	}
	fe2.setFailHooks("before_activate", false)
	continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
	if got := received(fe2); !strings.HasSuffix(got, "disarm,arm,before_activate:hello#0,commit,after_activate:hello#0") {
		t.Errorf("fe2 received %s, want a second stage 2 after the disarm", got)
	}
}

// TestValidateFailureRollsBack: a validate hook fails on one front-end
// after its swap: it swaps back, every other agent is rolled back, the
// deployment is ROLLED_BACK, and the after_activate hook still runs where
// before_activate ran.
func TestValidateFailureRollsBack(t *testing.T) {
	tc := startController(t, t.TempDir())
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgentWith(t, tc.addr, "fe2", "production", fakeOpts{labels: scheduler, failHooks: map[string]bool{"validate": true}})
	d := setupHooks(t, tc, schedulerHooks, fe1, fe2)
	dep := continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK)
	mustMention(t, "the error", dep.Error, "agent fe2", "validate:hello#0 exited with status 1")
	if got := received(fe1); got != "stage,arm,commit,validate:hello#0,rollback" {
		t.Errorf("fe1 received %s, want stage,arm,commit,validate:hello#0,rollback", got)
	}
	if got := received(fe2); got != "stage,arm,before_activate:hello#0,commit,validate:hello#0,after_activate:hello#0" {
		t.Errorf("fe2 received %s", got)
	}
}

// TestArmFailureSwapsNobody: one agent fails its readiness check (a staged
// file damaged and, here, not repairable): nobody is sent commit, every
// agent is disarmed, the deployment is PREPARED again, the failure naming
// the agent in its history; repaired, continue again deploys it.
func TestArmFailureSwapsNobody(t *testing.T) {
	tc := startController(t, t.TempDir())
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgent(t, tc.addr, "fe2", "production", false)
	fe2.setFailArm(true)
	fe3 := startFakeAgent(t, tc.addr, "fe3", "production", false)
	d := setupHooks(t, tc, schedulerHooks, fe1, fe2, fe3)
	dep := continueBack(t, tc, d.Id)
	mustMention(t, "the failure", lastEvent(dep), "readiness check (arm): agent fe2", "no longer matches its manifest", "nothing was swapped")
	for _, a := range []*fakeAgent{fe1, fe2, fe3} {
		waitReceived(t, a, "disarm")
		if slices.Contains(a.received(), "commit") {
			t.Errorf("%s was sent commit: %s", a.name, received(a))
		}
	}
	for _, a := range dep.Agents {
		if a.SwapTime != nil {
			t.Errorf("agent %s swapped", a.Name)
		}
	}
	fe2.setFailArm(false)
	continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
}

// TestLateJoinerIsStagedFirst: a front-end that connects after prepare,
// and does not finish its staging in the background, is staged by its
// arm, and the bytes it fetched are counted; with require_prepared the
// continue is refused naming it.
func TestLateJoinerIsStagedFirst(t *testing.T) {
	tc := startController(t, t.TempDir())
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	d := setupHooks(t, tc, "", fe1)
	fe2 := startFakeAgentWith(t, tc.addr, "fe2", "production", fakeOpts{unansweredStages: 1})
	waitAgents(t, tc, "production", 2)
	waitReceived(t, fe2, "stage(unanswered)")

	_, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id, RequirePrepared: true})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "require_prepared") || !strings.Contains(err.Error(), "fe2 (release") {
		t.Fatalf("continue with require_prepared = %v, want FailedPrecondition naming fe2", err)
	}
	if got, _ := tc.admin.GetDeployment(ctx(t), &cutoverv1.GetDeploymentRequest{Id: d.Id}); got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED {
		t.Fatalf("after the refusal the deployment is %s, want PREPARED", got.State)
	}

	dep := continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
	if got := received(fe2); got != "stage(unanswered),arm,commit" {
		t.Errorf("fe2 received %s, want stage(unanswered),arm,commit (its arm stages)", got)
	}
	var activating string
	for _, h := range dep.History {
		if h.State == cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING {
			activating = h.Message
		}
	}
	mustMention(t, "the ACTIVATING transition", activating, "staged first on fe2")
	for _, a := range dep.Agents {
		if a.Name == "fe2" && (a.TransferredBytes == 0 || a.TransferredBytes != a.ReleaseBytes) {
			t.Errorf("fe2 transferred %d of %d bytes, want all of it counted", a.TransferredBytes, a.ReleaseBytes)
		}
	}
	if dep.ArmDuration == nil {
		t.Error("arm_duration not set")
	}
}

// TestRequirePreparedVerifiesOnly: with require_prepared and every agent
// holding the releases, the arm commands only verify (they never stage),
// and the deployment records the choice.
func TestRequirePreparedVerifiesOnly(t *testing.T) {
	tc := startController(t, t.TempDir())
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	d := setupHooks(t, tc, "", fe1)
	if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id, RequirePrepared: true}); err != nil {
		t.Fatal(err)
	}
	dep := waitFor(t, tc, d.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	if got := received(fe1); got != "stage,arm(verify only),commit" {
		t.Errorf("fe1 received %s, want stage,arm(verify only),commit", got)
	}
	if !dep.RequirePrepared {
		t.Error("require_prepared not recorded")
	}
}

// TestRollbackCommandRunsHooks: a rollback by command runs the hooks of the
// releases it goes back to, as their activation does: before_activate, the
// swap with validate, after_activate. A failing before_activate hook stops
// it with nothing swapped, every agent disarmed, and the resume hook run
// where the suspend hook ran.
func TestRollbackCommandRunsHooks(t *testing.T) {
	tc := startController(t, t.TempDir())
	fe1 := startFakeAgent(t, tc.addr, "fe1", "production", false)
	fe2 := startFakeAgentWith(t, tc.addr, "fe2", "production", fakeOpts{labels: scheduler})
	d1 := setupHooks(t, tc, schedulerHooks, fe1, fe2)
	d1 = continueTo(t, tc, d1.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
	deploy := func(version string) *cutoverv1.Deployment {
		t.Helper()
		app, err := tc.admin.GetApplication(ctx(t), &cutoverv1.GetApplicationRequest{Name: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(app.SourceDir, "VERSION"), []byte(version+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := tc.admin.CreateDeployment(ctx(t), &cutoverv1.CreateDeploymentRequest{Environment: "production",
			Applications: []*cutoverv1.ApplicationVersion{{Name: "hello", VersionLabel: version}}})
		if err != nil {
			t.Fatal(err)
		}
		prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
		return continueTo(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED)
	}
	since := func(a *fakeAgent, n int) string { return strings.Join(a.received()[n:], ",") }

	d2 := deploy("v3")
	n1, n2 := len(fe1.received()), len(fe2.received())
	if _, err := tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d2.Id}); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, tc, d2.Id, "ROLLED_BACK", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK))
	for a, want := range map[*fakeAgent]string{
		fe1: "arm(verify only),commit,validate:hello#0",
		fe2: "arm(verify only),before_activate:hello#0,commit,validate:hello#0,after_activate:hello#0",
	} {
		if got := since(a, map[*fakeAgent]int{fe1: n1, fe2: n2}[a]); got != want {
			t.Errorf("%s received %s for the rollback, want %s", a.name, got, want)
		}
		if r := a.runningRelease("hello"); r != d1.Applications[0].ReleaseId {
			t.Errorf("%s runs %s after the rollback, want %s", a.name, r, d1.Applications[0].ReleaseId)
		}
	}
	for _, a := range got.Agents {
		if want := map[string]int{"fe1": 2, "fe2": 6}[a.Name]; len(a.Hooks) != want {
			t.Errorf("agent %s has %d hook results after stage 2 and the rollback, want %d: %v", a.Name, len(a.Hooks), want, a.Hooks)
		}
	}
	if !strings.Contains(got.History[len(got.History)-2].Message, "their before_activate hooks run (1)") {
		t.Errorf("the rollback request does not say which hooks run: %q", got.History[len(got.History)-2].Message)
	}

	d3 := deploy("v4")
	fe2.setFailHooks("before_activate", true)
	n1, n2 = len(fe1.received()), len(fe2.received())
	if _, err := tc.admin.RollbackDeployment(ctx(t), &cutoverv1.RollbackDeploymentRequest{Id: d3.Id}); err != nil {
		t.Fatal(err)
	}
	// The error is set once the rollback has ended, after_activate included
	// (cutoverctl deploy rollback --wait stops at the first error).
	got = waitFor(t, tc, d3.Id, "the rollback stopped", func(d *cutoverv1.Deployment) bool { return d.Error != "" })
	mentions := []string{"before_activate hooks", "agent fe2: before_activate:hello#0 exited with status 1", "nothing was swapped", "after_activate hooks ran"}
	for _, m := range mentions {
		if !strings.Contains(got.Error, m) {
			t.Errorf("error %q lacks %q", got.Error, m)
		}
	}
	if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED {
		t.Errorf("after a failed before_activate hook the deployment is %v, want DEPLOYED", got.State)
	}
	waitCond(t, "both agents disarmed", func() bool {
		return strings.Contains(since(fe1, n1), "disarm") && strings.Contains(since(fe2, n2), "disarm")
	})
	for a, want := range map[*fakeAgent][]string{
		fe1: {"arm(verify only)", "disarm"},
		fe2: {"arm(verify only)", "before_activate:hello#0", "disarm", "after_activate:hello#0"},
	} {
		got := strings.Split(since(a, map[*fakeAgent]int{fe1: n1, fe2: n2}[a]), ",")
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s received %v for the failed rollback, want %v", a.name, got, want)
		}
		if r := a.runningRelease("hello"); r != d3.Applications[0].ReleaseId {
			t.Errorf("%s runs %s after the failed rollback, want %s (nothing swapped)", a.name, r, d3.Applications[0].ReleaseId)
		}
	}
	tc.scrapeUntil(t, `cutover_deployment_rollbacks_total{environment="production",result="failed"} 1`)
}
