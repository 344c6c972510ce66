package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func TestTwoStageDeployment(t *testing.T) {
	tc := startController(t, t.TempDir())
	d := setup(t, tc, "production", true, "hello", "echo built > BUILT")
	startFakeAgent(t, tc.addr, "fe1", "production", false)
	startFakeAgent(t, tc.addr, "fe2", "production", false)
	waitAgents(t, tc, "production", 2)
	m := tc.scrape(t)
	for _, st := range []string{"deployed", "failed", "aborted", "expired", "rolled_back"} {
		if v := gauge(t, m, `cutover_deployments_total{environment="production",state="`+st+`"}`); v != 0 {
			t.Errorf("before any deployment, %s = %v, want 0", st, v)
		}
	}

	got, err := tc.admin.PrepareDeployment(ctx(t), &cutoverv1.PrepareDeploymentRequest{Id: d.Id})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING {
		t.Fatalf("prepare returned %v, want PREPARING", got.State)
	}
	d = waitFor(t, tc, d.Id, "PREPARED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED))
	if d.Applications[0].ReleaseId == "" || len(d.Agents) != 2 || d.ExpireTime == nil {
		t.Fatalf("prepared deployment = %v", d)
	}
	if want := d.PreparedTime.AsTime().Add(96 * time.Hour); !d.ExpireTime.AsTime().Equal(want) {
		t.Errorf("expire_time = %v, want prepared_time + 96h = %v", d.ExpireTime.AsTime(), want)
	}
	for _, a := range d.Agents {
		if a.State != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED || a.ReleaseBytes == 0 || a.TransferredBytes != a.ReleaseBytes {
			t.Errorf("agent after prepare = %v", a)
		}
	}
	if d.History[1].Actor != "alice" {
		t.Errorf("prepare actor = %q, want alice (the subject of the token)", d.History[1].Actor)
	}

	got, err = tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING {
		t.Fatalf("continue returned %v, want ACTIVATING", got.State)
	}
	d = waitFor(t, tc, d.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	if d.ActivationSpread == nil || d.SwapDuration == nil || d.FinishTime == nil {
		t.Errorf("deployed deployment lacks figures: %v", d)
	}
	// The metrics follow the commit that GetDeployment already sees.
	m = tc.scrapeUntil(t, `cutover_deployments_total{environment="production",state="deployed"} 1`)
	for series, want := range map[string]float64{
		`cutover_deployments_total{environment="production",state="deployed"}`:                1,
		`cutover_deployments_total{environment="production",state="failed"}`:                  0,
		`cutover_stage_duration_seconds_count{environment="production",stage="build"}`:        1,
		`cutover_stage_duration_seconds_count{environment="production",stage="transfer"}`:     1,
		`cutover_stage_duration_seconds_count{environment="production",stage="swap"}`:         1,
		`cutover_build_duration_seconds_count{application="hello"}`:                           1,
		`cutover_deployments_prepared{environment="production"}`:                              0,
		`cutover_deployment_prepared_next_expiry_timestamp_seconds{environment="production"}`: 0,
	} {
		if got := gauge(t, m, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if strings.Contains(m, `stage="sql"`) {
		t.Errorf("a stage 2 without SQL observed a sql duration:\n%s", grep(m, `stage="sql"`))
	}
	env, err := tc.admin.GetEnvironment(ctx(t), &cutoverv1.GetEnvironmentRequest{Name: "production"})
	if err != nil {
		t.Fatal(err)
	}
	if v := env.DeployedVersions["hello"]; v.GetReleaseId() != d.Applications[0].ReleaseId || v.GetVersionLabel() != "v2" {
		t.Errorf("deployed_versions = %v", env.DeployedVersions)
	}
	app, err := tc.admin.GetApplication(ctx(t), &cutoverv1.GetApplicationRequest{Name: "hello"})
	if err != nil || len(app.Releases) != 1 || app.Releases[0].Id != d.Applications[0].ReleaseId {
		t.Errorf("application = %v, %v", app, err)
	}
}

func TestActivationFailureRollsBack(t *testing.T) {
	tc := startController(t, t.TempDir())
	d := setup(t, tc, "production", false, "hello", "true")
	good := startFakeAgent(t, tc.addr, "fe1", "production", false)
	startFakeAgent(t, tc.addr, "fe2", "production", true)
	waitAgents(t, tc, "production", 2)

	got, err := tc.admin.StartDeployment(ctx(t), &cutoverv1.StartDeploymentRequest{Id: d.Id})
	if err != nil {
		t.Fatal(err)
	}
	if !got.SingleStage || got.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING {
		t.Fatalf("start returned %v", got)
	}
	d = waitFor(t, tc, d.Id, "ROLLED_BACK", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK))
	if !strings.Contains(d.Error, "agent fe2: health check failed") {
		t.Errorf("error = %q", d.Error)
	}
	if got := strings.Join(good.received(), ","); got != "stage,arm,commit,rollback" {
		t.Errorf("the good agent received %s, want stage,arm,commit,rollback", got)
	}
	var states []string
	for _, h := range d.History {
		states = append(states, strings.TrimPrefix(h.State.String(), "DEPLOYMENT_STATE_"))
	}
	if got := strings.Join(states, ","); got != "PLANNED,PREPARING,PREPARED,ACTIVATING,ROLLED_BACK" {
		t.Errorf("history = %s", got)
	}
	tc.scrapeUntil(t, `cutover_deployments_total{environment="production",state="rolled_back"} 1`)
	watchEnds(t, tc, d.Id)
}

// watchEnds fails the test unless WatchDeployment of the settled
// deployment id ends by itself (within 10s).
func watchEnds(t *testing.T, tc *testController, id string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx(t), 10*time.Second)
	defer cancel()
	stream, err := tc.admin.WatchDeployment(c, &cutoverv1.WatchDeploymentRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("the watch of settled deployment %s did not end: %v", id, err)
		}
	}
}

func TestFailingBuildSendsNothing(t *testing.T) {
	tc := startController(t, t.TempDir())
	d := setup(t, tc, "production", true, "hello", "echo compiler says no; exit 3")
	a := startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	if _, err := tc.admin.PrepareDeployment(ctx(t), &cutoverv1.PrepareDeploymentRequest{Id: d.Id}); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, tc, d.Id, "FAILED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED))
	if !strings.Contains(d.Error, "compiler says no") {
		t.Errorf("error = %q, want the build's output", d.Error)
	}
	if got := a.received(); len(got) != 0 {
		t.Errorf("the agent received %v after a failed build", got)
	}
}

func TestErrorCodes(t *testing.T) {
	tc := startController(t, t.TempDir())
	single := setup(t, tc, "single", false, "hello", "true")
	first := setup(t, tc, "production", true, "hello", "true")
	second, err := tc.admin.CreateDeployment(ctx(t), &cutoverv1.CreateDeploymentRequest{Environment: "production",
		Applications: []*cutoverv1.ApplicationVersion{{Name: "hello"}}})
	if err != nil {
		t.Fatal(err)
	}
	startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	if _, err := tc.admin.PrepareDeployment(ctx(t), &cutoverv1.PrepareDeploymentRequest{Id: first.Id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tc, first.Id, "PREPARED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED))

	c := ctx(t)
	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"prepare on a single-stage env", func() error {
			_, err := tc.admin.PrepareDeployment(c, &cutoverv1.PrepareDeploymentRequest{Id: single.Id})
			return err
		}, codes.FailedPrecondition, "cutoverctl env update single --two-stage"},
		{"start with no agent connected", func() error {
			_, err := tc.admin.StartDeployment(c, &cutoverv1.StartDeploymentRequest{Id: single.Id})
			return err
		}, codes.FailedPrecondition, "no agent of environment single is connected"},
		{"continue a planned deployment", func() error {
			_, err := tc.admin.ContinueDeployment(c, &cutoverv1.ContinueDeploymentRequest{Id: second.Id})
			return err
		}, codes.FailedPrecondition, "is PLANNED"},
		{"a second deployment while one is prepared", func() error {
			_, err := tc.admin.PrepareDeployment(c, &cutoverv1.PrepareDeploymentRequest{Id: second.Id})
			return err
		}, codes.FailedPrecondition, "deployment " + first.Id + " of environment production is PREPARED"},
		{"prepare twice", func() error {
			_, err := tc.admin.PrepareDeployment(c, &cutoverv1.PrepareDeploymentRequest{Id: first.Id})
			return err
		}, codes.FailedPrecondition, "is PREPARED, not PLANNED"},
		{"unknown deployment", func() error {
			_, err := tc.admin.GetDeployment(c, &cutoverv1.GetDeploymentRequest{Id: "d-999"})
			return err
		}, codes.NotFound, "d-999"},
		{"unknown environment", func() error {
			_, err := tc.admin.CreateDeployment(c, &cutoverv1.CreateDeploymentRequest{Environment: "nowhere", Applications: []*cutoverv1.ApplicationVersion{{Name: "hello"}}})
			return err
		}, codes.NotFound, "nowhere"},
		{"unknown application", func() error {
			_, err := tc.admin.CreateDeployment(c, &cutoverv1.CreateDeploymentRequest{Environment: "production", Applications: []*cutoverv1.ApplicationVersion{{Name: "nope"}}})
			return err
		}, codes.NotFound, "nope"},
		{"bad environment name", func() error {
			_, err := tc.admin.CreateEnvironment(c, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "Prod_1"}})
			return err
		}, codes.InvalidArgument, "Prod_1"},
		{"bad application name", func() error {
			_, err := tc.admin.GetApplication(c, &cutoverv1.GetApplicationRequest{Name: "-x"})
			return err
		}, codes.InvalidArgument, "-x"},
		{"existing environment", func() error {
			_, err := tc.admin.CreateEnvironment(c, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "production"}})
			return err
		}, codes.AlreadyExists, "production"},
		{"unknown update_mask path", func() error {
			_, err := tc.admin.UpdateEnvironment(c, &cutoverv1.UpdateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "production"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
			return err
		}, codes.InvalidArgument, "name"},
		{"relative source dir", func() error {
			_, err := tc.admin.RegisterApplication(c, &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: "examples/hello"}})
			return err
		}, codes.InvalidArgument, "relative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code || !strings.Contains(status.Convert(err).Message(), tt.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.code, tt.msg)
			}
		})
	}
	// Nothing changed.
	for id, want := range map[string]cutoverv1.DeploymentState{
		single.Id: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED,
		first.Id:  cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED,
		second.Id: cutoverv1.DeploymentState_DEPLOYMENT_STATE_PLANNED,
	} {
		d, err := tc.admin.GetDeployment(c, &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil || d.State != want || len(d.History) != map[bool]int{true: 3, false: 1}[want == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED] {
			t.Errorf("deployment %s after refused requests: %v, %v", id, d, err)
		}
	}
	// Two-stage can be turned on, and then single can be prepared... once an agent is there.
	env, err := tc.admin.UpdateEnvironment(c, &cutoverv1.UpdateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: "single", TwoStage: true},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"two_stage"}}})
	if err != nil || !env.TwoStage {
		t.Fatalf("update two_stage: %v, %v", env, err)
	}
	// Abort the prepared one: the agent is told to drop what it staged.
	d, err := tc.admin.AbortDeployment(c, &cutoverv1.AbortDeploymentRequest{Id: first.Id, Reason: "changed my mind"})
	if err != nil || d.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_ABORTED || !strings.Contains(d.Error, "changed my mind") {
		t.Fatalf("abort: %v, %v", d, err)
	}
	if _, err := tc.admin.AbortDeployment(c, &cutoverv1.AbortDeploymentRequest{Id: first.Id}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("abort twice: %v", err)
	}
}

func TestRestartKeepsPreparedDeployment(t *testing.T) {
	dir := t.TempDir()
	tc := startController(t, dir)
	d := setup(t, tc, "production", true, "hello", "true")
	agent := startFakeAgent(t, tc.addr, "fe1", "production", false)
	waitAgents(t, tc, "production", 1)
	if _, err := tc.admin.PrepareDeployment(ctx(t), &cutoverv1.PrepareDeploymentRequest{Id: d.Id}); err != nil {
		t.Fatal(err)
	}
	before := waitFor(t, tc, d.Id, "PREPARED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED))
	tc.stop(t)

	tc = startController(t, dir)
	agent.setAddr(tc.addr)
	after, err := tc.admin.GetDeployment(ctx(t), &cutoverv1.GetDeploymentRequest{Id: d.Id})
	if err != nil {
		t.Fatal(err)
	}
	if after.State != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED || len(after.History) != len(before.History) ||
		after.Applications[0].ReleaseId != before.Applications[0].ReleaseId || !after.ExpireTime.AsTime().Equal(before.ExpireTime.AsTime()) {
		t.Fatalf("after restart:\n%v\nbefore:\n%v", after, before)
	}
	// The agent comes back and the deployment can continue.
	waitAgents(t, tc, "production", 1)
	if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tc, d.Id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
}

// TestWatchFollowsToTheEnd: a watch follows a deployment to its end, each
// event holding every agent, or, with changed_agents_only, after a first
// whole event, only the agents that changed since the previous event;
// merged, those make the deployment as GetDeployment shows it, and every
// event counts every agent per state (none while PLANNED).
func TestWatchFollowsToTheEnd(t *testing.T) {
	for _, changedOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("changed_agents_only=%v", changedOnly), func(t *testing.T) {
			tc := startController(t, t.TempDir())
			d := setup(t, tc, "production", false, "hello", "true")
			for _, name := range []string{"fe1", "fe2", "fe3"} {
				startFakeAgent(t, tc.addr, name, "production", false)
			}
			waitAgents(t, tc, "production", 3)
			stream, err := tc.admin.WatchDeployment(ctx(t), &cutoverv1.WatchDeploymentRequest{Id: d.Id, ChangedAgentsOnly: changedOnly})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tc.admin.StartDeployment(ctx(t), &cutoverv1.StartDeploymentRequest{Id: d.Id}); err != nil {
				t.Fatal(err)
			}
			agents := map[string]*cutoverv1.DeploymentAgent{} // as the events so far make them
			var last *cutoverv1.Deployment
			events, partial := 0, 0
			for {
				ev, err := stream.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				last, events = ev.Deployment, events+1
				if ev.AgentsPartial != (changedOnly && events > 1) {
					t.Fatalf("event %d: agents_partial %v", events, ev.AgentsPartial)
				}
				if ev.AgentsPartial {
					partial++
				} else {
					clear(agents)
				}
				for _, a := range ev.Deployment.Agents {
					if ev.AgentsPartial && proto.Equal(agents[a.Name], a) {
						t.Errorf("event %d holds agent %s unchanged", events, a.Name)
					}
					agents[a.Name] = a
				}
				var counted int32
				for _, c := range ev.AgentStates {
					counted += c.Count
				}
				if counted != int32(len(agents)) {
					t.Errorf("event %d counts %d agents in its agent_states, want %d", events, counted, len(agents))
				}
			}
			if last.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED || events < 2 || changedOnly && partial == 0 {
				t.Fatalf("watch ended after %d events (%d partial) with %v", events, partial, last)
			}
			got, err := tc.admin.GetDeployment(ctx(t), &cutoverv1.GetDeploymentRequest{Id: d.Id})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range got.Agents {
				if !proto.Equal(agents[a.Name], a) {
					t.Errorf("agent %s: the events make %v, GetDeployment shows %v", a.Name, agents[a.Name], a)
				}
			}
		})
	}
}

func TestHealthAndReflection(t *testing.T) {
	tc := startController(t, t.TempDir())
	conn := dialAs(t, tc.addr, tc.dataDir, "") // no token: health is open
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx(t), &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", resp, err)
	}
}

func TestRestartResumesPreparingAndActivating(t *testing.T) {
	dir := t.TempDir()
	tc := startController(t, dir)
	d := setup(t, tc, "production", true, "hello", "true")
	agent := startFakeAgent(t, tc.addr, "fe1", "production", false)
	agent.leaveUnanswered("stage", 1)
	agent.leaveUnanswered("commit", 1)
	waitAgents(t, tc, "production", 1)

	if _, err := tc.admin.PrepareDeployment(ctx(t), &cutoverv1.PrepareDeploymentRequest{Id: d.Id}); err != nil {
		t.Fatal(err)
	}
	waitReceived(t, agent, "stage(unanswered)")
	tc.stop(t)
	tc = startController(t, dir)
	agent.setAddr(tc.addr)
	waitFor(t, tc, d.Id, "PREPARED after a restart", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED))

	if _, err := tc.admin.ContinueDeployment(ctx(t), &cutoverv1.ContinueDeploymentRequest{Id: d.Id}); err != nil {
		t.Fatal(err)
	}
	waitReceived(t, agent, "commit(unanswered)")
	tc.stop(t)
	tc = startController(t, dir)
	agent.setAddr(tc.addr)
	d = waitFor(t, tc, d.Id, "DEPLOYED after a restart", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
	if got := strings.Join(agent.received(), ","); got != "stage(unanswered),stage,arm,commit(unanswered),commit" {
		t.Errorf("agent received %s", got)
	}
}

func TestMetrics(t *testing.T) {
	tc := startController(t, t.TempDir())
	c := tc.ctl
	startFakeAgent(t, c.Addr().String(), "fe1", "production", false)
	body := ""
	err := poll.Until(context.Background(), 20*time.Second, func() error {
		resp, err := http.Get("http://" + c.MetricsAddr().String() + "/metrics")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body = string(b); !strings.Contains(body, `cutover_agents_connected{environment="production"} 1`) || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, `cutover_rpc_requests_total{code="OK",method="/cutover.v1.AdminService/CreateToken"}`) {
			return errors.New("agents_connected 1 and go_goroutines not on /metrics yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
}

func TestSecondControllerOnTheSameDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	startController(t, dir)
	_, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second New on %s: err = %v", dir, err)
	}
}
