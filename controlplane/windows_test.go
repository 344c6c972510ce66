package controlplane

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Tests of deployment windows, continue at the window, expiry and
// approval, with a fake clock.

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// createEnv creates a two-stage environment with the given windows and
// prepared_ttl.
func createEnv(t *testing.T, tc *testController, name string, ttl time.Duration, approval bool, windows ...string) {
	t.Helper()
	_, err := tc.admin.CreateEnvironment(ctx(t), &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{
		Name: name, TwoStage: true, Windows: windows, PreparedTtl: durationpb.New(ttl), RequireApproval: approval}})
	if err != nil {
		t.Fatal(err)
	}
}

// setWindows replaces an environment's windows.
func setWindows(t *testing.T, tc *testController, env string, windows ...string) {
	t.Helper()
	_, err := tc.admin.UpdateEnvironment(ctx(t), &cutoverv1.UpdateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: env, Windows: windows},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"windows"}}})
	if err != nil {
		t.Fatal(err)
	}
}

// wantRefused checks that err is FAILED_PRECONDITION with every part.
func wantRefused(t *testing.T, err error, parts ...string) {
	t.Helper()
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("err = %v, want FailedPrecondition", err)
	}
	for _, p := range parts {
		if !strings.Contains(status.Convert(err).Message(), p) {
			t.Errorf("message %q\nlacks %q", status.Convert(err).Message(), p)
		}
	}
}

// lastEvent is the message of a deployment's last history entry.
func lastEvent(d *cutoverv1.Deployment) string { return d.History[len(d.History)-1].Message }

func continueReq(id string) *cutoverv1.ContinueDeploymentRequest {
	return &cutoverv1.ContinueDeploymentRequest{Id: id}
}

func TestWindowsAcrossDSTAndMidnight(t *testing.T) {
	clock := newFakeClock(at("2026-03-28T01:30:00Z")) // Saturday, 01:30 WET
	tc := startControllerWithClock(t, t.TempDir(), clock.Now)
	createEnv(t, tc, "production", 30*24*time.Hour, false, "Mon-Sun 02:00-04:00 Europe/Lisbon")
	d := setup(t, tc, "production", true, "hello", "true")
	startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)

	env, err := tc.admin.GetEnvironment(ctx(t), &cutoverv1.GetEnvironmentRequest{Name: "production"})
	if err != nil || env.WindowOpen || !env.NextWindowOpen.AsTime().Equal(at("2026-03-28T02:00:00Z")) || !strings.Contains(env.NextWindow, "Sat 2026-03-28 02:00 WET") {
		t.Fatalf("environment before the window: %v, %v", env, err)
	}
	_, err = tc.admin.ContinueDeployment(ctx(t), continueReq(d.Id))
	wantRefused(t, err, "no deployment window of environment production is open now (2026-03-28T01:30:00Z)",
		`the next opens Sat 2026-03-28 02:00 WET (2026-03-28 02:00 UTC), window "Mon-Sun 02:00-04:00 Europe/Lisbon"`,
		"--at-window", "--force", "deployment "+d.Id+" stays PREPARED")

	// Summer time starts on Sunday 29 March at 01:00 UTC: 02:00 in Lisbon is 01:00 UTC from then on.
	clock.Set(at("2026-03-29T00:30:00Z"))
	_, err = tc.admin.ContinueDeployment(ctx(t), continueReq(d.Id))
	wantRefused(t, err, "the next opens Sun 2026-03-29 02:00 WEST (2026-03-29 01:00 UTC)")
	clock.Set(at("2026-03-30T03:30:00Z")) // 04:30 WEST: closed (it would be open on winter time)
	_, err = tc.admin.ContinueDeployment(ctx(t), continueReq(d.Id))
	wantRefused(t, err, "the next opens Tue 2026-03-31 02:00 WEST (2026-03-31 01:00 UTC)")

	clock.Set(at("2026-03-30T01:30:00Z")) // 02:30 WEST: open (it would be closed on winter time)
	env, _ = tc.admin.GetEnvironment(ctx(t), &cutoverv1.GetEnvironmentRequest{Name: "production"})
	if !env.WindowOpen || env.NextWindowOpen != nil || !env.WindowClose.AsTime().Equal(at("2026-03-30T03:00:00Z")) {
		t.Fatalf("environment inside the window: %v", env)
	}
	if _, err := tc.admin.ContinueDeployment(ctx(t), continueReq(d.Id)); err != nil {
		t.Fatalf("continue inside the window: %v", err)
	}
	waitFor(t, tc, d.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))

	// A window that crosses midnight: Sunday's runs into Monday 01:00.
	setWindows(t, tc, "production", "Sat,Sun 22:00-01:00 UTC")
	inside := setup(t, tc, "production", true, "hello", "true")
	prepare(t, tc, inside.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	clock.Set(at("2026-04-06T00:30:00Z")) // Monday 00:30
	if _, err := tc.admin.ContinueDeployment(ctx(t), continueReq(inside.Id)); err != nil {
		t.Fatalf("continue on Monday 00:30, inside Sunday's window: %v", err)
	}
	waitFor(t, tc, inside.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))

	forced := setup(t, tc, "production", true, "hello", "true")
	prepare(t, tc, forced.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	clock.Set(at("2026-04-06T01:30:00Z")) // Monday 01:30: closed
	_, err = tc.admin.ContinueDeployment(ctx(t), continueReq(forced.Id))
	wantRefused(t, err, "the next opens Sat 2026-04-11 22:00 UTC (2026-04-11 22:00 UTC)")
	_, err = tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: forced.Id, Force: true})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "force needs a reason") {
		t.Fatalf("force without a reason: %v", err)
	}
	got, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: forced.Id, Force: true, ForceReason: "hotfix for INC-7"})
	if err != nil || got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING {
		t.Fatalf("forced continue: %v, %v", got, err)
	}
	h := got.History[len(got.History)-2]
	if h.Actor != "alice" || h.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED ||
		h.Message != "forced outside the deployment windows (Sat,Sun 22:00-01:00 UTC): hotfix for INC-7" {
		t.Fatalf("history entry of the force = %v", h)
	}
	waitFor(t, tc, forced.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
}

func TestStartOutsideWindowIsRefused(t *testing.T) {
	clock := newFakeClock(at("2026-03-02T12:00:00Z")) // Monday noon
	tc := startControllerWithClock(t, t.TempDir(), clock.Now)
	if _, err := tc.admin.CreateEnvironment(ctx(t), &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{
		Name: "production", Windows: []string{"Mon-Fri 02:00-04:00 UTC"}}}); err != nil {
		t.Fatal(err)
	}
	d := setup(t, tc, "production", false, "hello", "true")
	startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	_, err := tc.admin.StartDeployment(ctx(t), &cutoverv1.StartDeploymentRequest{Id: d.Id})
	wantRefused(t, err, "the next opens Tue 2026-03-03 02:00 UTC", "start then, or override with --force", "stays PLANNED")
	got, err := tc.admin.StartDeployment(ctx(t), &cutoverv1.StartDeploymentRequest{Id: d.Id, Force: true, ForceReason: "security fix"})
	if err != nil || !strings.Contains(got.History[1].Message, "forced outside the deployment windows (Mon-Fri 02:00-04:00 UTC): security fix") {
		t.Fatalf("forced start: %v, %v", got, err)
	}
	waitFor(t, tc, d.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
}

// A single-stage start inside the window whose stage 1 outlasts it does
// not swap: the window is checked again when stage 1 ends, unless the start
// was forced.
func TestStartWhoseStage1OutlastsTheWindow(t *testing.T) {
	clock := newFakeClock(at("2026-03-03T02:59:00Z")) // Tuesday, one minute before the window closes
	tc := startControllerWithClock(t, t.TempDir(), clock.Now)
	if _, err := tc.admin.CreateEnvironment(ctx(t), &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{
		Name: "production", Windows: []string{"Mon-Fri 02:00-03:00 UTC"}}}); err != nil {
		t.Fatal(err)
	}
	d := setup(t, tc, "production", false, "hello", "true")
	agent := startFakeAgentWith(t, tc.addr, "fe1", "production", fakeOpts{onStage: func() {
		clock.Set(clock.Now().Add(30 * time.Minute)) // the transfer takes half an hour: 03:29, closed
	}})
	waitAgents(t, tc, "production", 1)
	if _, err := tc.admin.StartDeployment(ctx(t), &cutoverv1.StartDeploymentRequest{Id: d.Id}); err != nil {
		t.Fatalf("start inside the window: %v", err)
	}
	got := waitFor(t, tc, d.Id, "FAILED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED))
	for _, want := range []string{
		"stage 1 finished at 2026-03-03T03:29:00Z, after the deployment windows of environment production (Mon-Fri 02:00-03:00 UTC) had closed",
		"nothing was swapped and the database was not changed",
		"start it in the next window, which opens Wed 2026-03-04 02:00 UTC (2026-03-04 02:00 UTC)",
		"--two-stage", "--at-window",
	} {
		if !strings.Contains(got.Error, want) {
			t.Errorf("error %q\nlacks %q", got.Error, want)
		}
	}
	if r := agent.received(); slices.Contains(r, "arm") || slices.Contains(r, "commit") {
		t.Errorf("the agent received %v: stage 2 began after the window closed", r)
	}

	// Forced, the same start swaps although stage 1 ends outside the window.
	forced := setup(t, tc, "production", false, "hello", "true")
	clock.Set(at("2026-03-04T02:59:00Z"))
	if _, err := tc.admin.StartDeployment(ctx(t), &cutoverv1.StartDeploymentRequest{Id: forced.Id, Force: true, ForceReason: "hotfix"}); err != nil {
		t.Fatalf("forced start: %v", err)
	}
	waitFor(t, tc, forced.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
}

func TestContinueAtWindowAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(at("2026-03-01T01:00:00Z"))
	tc := startControllerWithClock(t, dir, clock.Now)
	// No earlier stage 2 here: the prediction is the default 5m, longer than the first window.
	createEnv(t, tc, "production", 96*time.Hour, false, "Mon-Sun 02:00-02:03 UTC", "Mon-Sun 03:00-04:00 UTC")
	d := setup(t, tc, "production", true, "hello", "true")
	agent := startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	d = prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	if d.PredictedStage2Duration.AsDuration() != 5*time.Minute {
		t.Fatalf("predicted stage 2 = %v, want the default 5m", d.PredictedStage2Duration)
	}

	got, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id, AtWindow: true})
	if err != nil || got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED || !got.ScheduledTime.AsTime().Equal(at("2026-03-01T02:00:00Z")) ||
		!strings.Contains(lastEvent(got), "stage 2 scheduled for Sun 2026-03-01 02:00 UTC") {
		t.Fatalf("continue at the window: %v, %v", got, err)
	}
	if m := tc.scrape(t); !strings.Contains(m, `cutover_deployments_continue_scheduled{environment="production"} 1`) ||
		!strings.Contains(m, `cutover_deployment_window_open{environment="production"} 0`) {
		t.Errorf("metrics lack the scheduled deployment or the closed window:\n%s", grep(m, "cutover_deployment"))
	}
	// Cancelled, it is plain PREPARED again; scheduled again.
	got, err = tc.admin.CancelScheduledContinue(ctx(t), &cutoverv1.CancelScheduledContinueRequest{Id: d.Id})
	if err != nil || got.ScheduledTime != nil || got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED {
		t.Fatalf("cancel: %v, %v", got, err)
	}
	if m := tc.scrape(t); !strings.Contains(m, `cutover_deployments_continue_scheduled{environment="production"} 0`) {
		t.Errorf("metrics after the cancel:\n%s", grep(m, "cutover_deployments"))
	}
	_, err = tc.admin.CancelScheduledContinue(ctx(t), &cutoverv1.CancelScheduledContinueRequest{Id: d.Id})
	wantRefused(t, err, "has no scheduled continue")
	if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id, AtWindow: true}); err != nil {
		t.Fatal(err)
	}

	// 02:00: the window is open, but 5m would not fit before 02:03: rescheduled to 03:00.
	tc.tick(clock, at("2026-03-01T02:00:00Z"))
	got = waitFor(t, tc, d.Id, "rescheduled", func(d *cutoverv1.Deployment) bool {
		return d.ScheduledTime != nil && d.ScheduledTime.AsTime().Equal(at("2026-03-01T03:00:00Z"))
	})
	if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED || !strings.Contains(lastEvent(got),
		"its predicted duration 5m0s would end at 2026-03-01T02:05:00Z, after the window closes at 2026-03-01T02:03:00Z; rescheduled for Sun 2026-03-01 03:00 UTC") {
		t.Fatalf("after 02:00: %v", got)
	}
	if slices.Contains(agent.received(), "commit") {
		t.Fatal("the agent was told to activate in a window too short")
	}

	// The controller stops; the schedule is on disk; at 03:00 the restarted controller starts stage 2.
	tc.stop(t)
	clock.Set(at("2026-03-01T03:00:30Z"))
	tc = startControllerWithClock(t, dir, clock.Now)
	agent.setAddr(tc.addr)
	waitAgents(t, tc, "production", 1)
	// The startup tick may have come before the agent: then it retries 30s later.
	tc.tick(clock, at("2026-03-01T03:01:00Z"))
	got = waitFor(t, tc, d.Id, "DEPLOYED after the restart", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	var msgs []string
	for _, h := range got.History {
		msgs = append(msgs, h.Message)
	}
	if !strings.Contains(strings.Join(msgs, "\n"), "scheduled stage 2 starts") || got.History[len(got.History)-2].Actor != "controller" {
		t.Fatalf("history:\n%s", strings.Join(msgs, "\n"))
	}
}

func TestExpiryExtendAndRestart(t *testing.T) {
	dir := t.TempDir()
	t0 := at("2026-03-01T10:00:00Z")
	clock := newFakeClock(t0)
	tc := startControllerWithClock(t, dir, clock.Now)
	createEnv(t, tc, "production", time.Hour, false)
	d := setup(t, tc, "production", true, "hello", "true")
	agent := startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	d = prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	if !d.ExpireTime.AsTime().Equal(t0.Add(time.Hour)) {
		t.Fatalf("expire_time = %v, want prepared + 1h", d.ExpireTime.AsTime())
	}
	got, err := tc.admin.ExtendDeployment(ctx(t), &cutoverv1.ExtendDeploymentRequest{Id: d.Id, By: durationpb.New(30 * time.Minute)})
	if err != nil || !got.ExpireTime.AsTime().Equal(t0.Add(90*time.Minute)) || lastEvent(got) != "extended by 30m by alice: expires at 2026-03-01T11:30:00Z" {
		t.Fatalf("extend: %v, %v", got, err)
	}
	m := tc.scrape(t)
	if !strings.Contains(m, `cutover_deployments_prepared{environment="production"} 1`) ||
		gauge(t, m, `cutover_deployment_prepared_next_expiry_timestamp_seconds{environment="production"}`) != float64(t0.Add(90*time.Minute).Unix()) {
		t.Errorf("metrics:\n%s", grep(m, "cutover_deployment"))
	}

	tc.tick(clock, t0.Add(90*time.Minute))
	got = waitFor(t, tc, d.Id, "EXPIRED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_EXPIRED))
	if !strings.Contains(lastEvent(got), "expired at 2026-03-01T11:30:00Z") || got.History[len(got.History)-1].Actor != "controller" {
		t.Fatalf("expired: %v", got)
	}
	waitReceived(t, agent, "drop")
	want := "deployment " + d.Id + " expired at 2026-03-01T11:30:00Z (prepared_ttl 1h); prepare it again"
	_, err = tc.admin.ContinueDeployment(ctx(t), continueReq(d.Id))
	if status.Code(err) != codes.FailedPrecondition || status.Convert(err).Message() != want {
		t.Fatalf("continue an expired deployment: %v\nwant FailedPrecondition %q", err, want)
	}
	_, err = tc.admin.ExtendDeployment(ctx(t), &cutoverv1.ExtendDeploymentRequest{Id: d.Id, By: durationpb.New(time.Hour)})
	if status.Convert(err).Message() != want {
		t.Fatalf("extend an expired deployment: %v", err)
	}

	// One that expires while the controller is down is EXPIRED when it comes back.
	d2 := setup(t, tc, "production", true, "hello", "true")
	prepare(t, tc, d2.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	tc.stop(t)
	clock.Set(t0.Add(3 * time.Hour))
	tc = startControllerWithClock(t, dir, clock.Now)
	agent.setAddr(tc.addr)
	_, err = tc.admin.ContinueDeployment(ctx(t), continueReq(d2.Id))
	wantRefused(t, err, "deployment "+d2.Id+" expired at", "(prepared_ttl 1h); prepare it again")
	waitFor(t, tc, d2.Id, "EXPIRED after the restart", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_EXPIRED))
}

func TestApprovalRequired(t *testing.T) {
	tc := startController(t, t.TempDir())
	createEnv(t, tc, "production", 96*time.Hour, true)
	d := setup(t, tc, "production", true, "hello", "true")
	startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	_, err := tc.admin.ContinueDeployment(ctx(t), continueReq(d.Id))
	wantRefused(t, err, "needs an approval", "cutoverctl deploy approve "+d.Id)

	bobClient, bob := tc.as(t, "bob", cutoverv1.Role_ROLE_APPROVER), context.Background()
	got, err := bobClient.ApproveDeployment(bob, &cutoverv1.ApproveDeploymentRequest{Id: d.Id, Comment: "CAB-12 ok"})
	if err != nil || got.Approval.GetActor() != "bob" || got.Approval.GetComment() != "CAB-12 ok" || got.Approval.GetTime() == nil ||
		lastEvent(got) != "approved by bob: CAB-12 ok" {
		t.Fatalf("approve: %v, %v", got, err)
	}
	_, err = bobClient.ApproveDeployment(bob, &cutoverv1.ApproveDeploymentRequest{Id: d.Id})
	wantRefused(t, err, "approved already by bob")
	if _, err := tc.admin.ContinueDeployment(ctx(t), continueReq(d.Id)); err != nil {
		t.Fatalf("continue once approved: %v", err)
	}
	waitFor(t, tc, d.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// gauge returns the value of the series named (with labels) in a /metrics page.
func gauge(t *testing.T, page, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", series)
	return 0
}

func TestContinueAtWindowWhileOpenStartsByItself(t *testing.T) {
	// The real clock and the controller's own timer task: no Tick from the test.
	tc := startController(t, t.TempDir())
	createEnv(t, tc, "production", 96*time.Hour, false, "Mon-Sun 00:00-24:00 UTC")
	d := setup(t, tc, "production", true, "hello", "true")
	startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	prepare(t, tc, d.Id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED)
	got, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id, AtWindow: true})
	if err != nil || !strings.Contains(lastEvent(got), "stage 2 scheduled for now: a deployment window is open") {
		t.Fatalf("continue at the window while one is open: %v, %v", got, err)
	}
	got = waitFor(t, tc, d.Id, "DEPLOYED by the timer task", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	if got.ScheduledTime != nil {
		t.Errorf("scheduled_time kept after the start: %v", got.ScheduledTime)
	}
}
