package deployment

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

func TestCanTransition(t *testing.T) {
	all := []model.DeploymentState{model.Planned, model.Preparing, model.Prepared, model.Activating,
		model.Deployed, model.Failed, model.Aborted, model.Expired, model.RolledBack}
	allowed := map[[2]model.DeploymentState]bool{
		{model.Planned, model.Preparing}:     true,
		{model.Planned, model.Aborted}:       true,
		{model.Preparing, model.Prepared}:    true,
		{model.Preparing, model.Failed}:      true,
		{model.Preparing, model.Aborted}:     true,
		{model.Prepared, model.Activating}:   true,
		{model.Prepared, model.Aborted}:      true,
		{model.Prepared, model.Expired}:      true,
		{model.Prepared, model.Failed}:       true,
		{model.Activating, model.Deployed}:   true,
		{model.Activating, model.Failed}:     true,
		{model.Activating, model.RolledBack}: true,
		{model.Activating, model.Prepared}:   true, // a stage 2 that failed before anything changed
		{model.Deployed, model.RolledBack}:   true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := CanTransition(from, to); got != allowed[[2]model.DeploymentState{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, got)
			}
		}
	}
	for _, s := range all {
		wantFinal := s == model.Deployed || s == model.Failed || s == model.Aborted || s == model.Expired || s == model.RolledBack
		if s.Final() != wantFinal {
			t.Errorf("%s.Final() = %v", s, s.Final())
		}
		wantBusy := s == model.Preparing || s == model.Prepared || s == model.Activating
		if Busy(s) != wantBusy {
			t.Errorf("Busy(%s) = %v", s, Busy(s))
		}
	}
}

func TestChecks(t *testing.T) {
	planned := &model.Deployment{ID: "d-2", Environment: "prod", State: model.Planned}
	prepared := &model.Deployment{ID: "d-1", Environment: "prod", State: model.Prepared}
	otherEnv := &model.Deployment{ID: "d-3", Environment: "test", State: model.Activating}
	twoStage := &model.Environment{Name: "prod", TwoStage: true}
	oneStage := &model.Environment{Name: "prod"}
	tests := []struct {
		name string
		err  error
		want string // "" means no error
	}{
		{"prepare ok", checkPrepare(planned, twoStage, []*model.Deployment{planned, otherEnv}), ""},
		{"prepare single-stage env", checkPrepare(planned, oneStage, nil), "cutoverctl env update prod --two-stage"},
		{"prepare with one in the way", checkPrepare(planned, twoStage, []*model.Deployment{prepared, planned}), "deployment d-1 of environment prod is PREPARED"},
		{"prepare twice", checkPrepare(prepared, twoStage, nil), "is PREPARED, not PLANNED"},
		{"start ok on single-stage", checkStartable(planned, nil, "start"), ""},
		{"continue planned", checkContinue(planned, &model.Environment{}, t0), "is PLANNED, not PREPARED"},
		{"continue prepared", checkContinue(prepared, &model.Environment{}, t0), ""},
		{"continue without the approval required", checkContinue(prepared, &model.Environment{Name: "prod", RequireApproval: true}, t0), "needs an approval"},
		{"abort prepared", checkAbort(prepared), ""},
		{"abort activating", checkAbort(otherEnv), "is ACTIVATING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				if tt.err != nil {
					t.Fatalf("err = %v, want nil", tt.err)
				}
				return
			}
			if !errors.Is(tt.err, errkind.FailedPrecondition) || !strings.Contains(tt.err.Error(), tt.want) {
				t.Fatalf("err = %v, want FailedPrecondition containing %q", tt.err, tt.want)
			}
		})
	}
}

func TestCheckActivatable(t *testing.T) {
	d := &model.Deployment{ID: "d-1", Environment: "prod",
		Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: "r2"}},
		Agents:       []model.DeploymentAgent{{Name: "fe1"}, {Name: "fe2"}}}
	holds := func(name string, ids ...string) fleet.AgentView {
		return fleet.AgentView{Agent: model.Agent{Name: name, Applications: []model.AgentApplication{{Name: "hello", RunningReleaseID: "r1", StagedReleaseIDs: ids}}}, Connected: true}
	}
	tests := []struct {
		name      string
		connected []fleet.AgentView
		required  bool
		want      string
	}{
		{"all staged", []fleet.AgentView{holds("fe1", "r2"), holds("fe2", "r0", "r2")}, true, ""},
		{"one gone", []fleet.AgentView{holds("fe1", "r2")}, false, "agent fe2 is not connected"},
		{"one removed", []fleet.AgentView{holds("fe1", "r2")}, true, ""},
		{"one lacks it: arm stages it", []fleet.AgentView{holds("fe1", "r2"), holds("fe2")}, false, ""},
		{"a newcomer lacks it: arm stages it", []fleet.AgentView{holds("fe1", "r2"), holds("fe2", "r2"), holds("fe3")}, false, ""},
		{"one lacks it, require_prepared", []fleet.AgentView{holds("fe1", "r2"), holds("fe2")}, true, "do not have the releases staged: fe2 (release r2 of hello)"},
		{"a newcomer lacks it, require_prepared", []fleet.AgentView{holds("fe1", "r2"), holds("fe2", "r2"), holds("fe3")}, true, "staged: fe3 (release r2 of hello)"},
		{"none", nil, false, "no agent of environment prod is connected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			known := map[string]bool{"fe1": true, "fe2": tt.name != "one removed", "fe3": true}
			problems := checkActivatable(d, tt.connected, known, tt.required)
			if tt.want == "" && problems != "" {
				t.Fatalf("problems %q", problems)
			}
			if !strings.Contains(problems, tt.want) {
				t.Fatalf("problems = %q, want %q", problems, tt.want)
			}
		})
	}
}

// dep builds a deployment in state st with agents in the given states; an
// agent whose command is "x" has a command out.
func dep(st model.DeploymentState, rollingBack bool, agents ...model.DeploymentAgent) *model.Deployment {
	return &model.Deployment{ID: "d-1", Environment: "prod", State: st, RollingBack: rollingBack, Agents: agents, Error: "activation failed: x"}
}

func ag(name string, st model.AgentState, cmd string, swapped bool) model.DeploymentAgent {
	a := model.DeploymentAgent{Name: name, State: st, Command: cmd}
	if swapped {
		a.SwapTime = t0
	}
	if st == model.AgentFailed || st == model.AgentRolledBack {
		a.Error = "boom"
	}
	return a
}

// inStep builds an ACTIVATING deployment in stage 2 step st, ending in ending.
func inStep(st model.Stage2Step, ending model.DeploymentState, agents ...model.DeploymentAgent) *model.Deployment {
	d := dep(model.Activating, false, agents...)
	d.Step, d.Ending = st, ending
	return d
}

// stepAg is an agent with a command out (cmd "x") or done, failed in the current step if stepErr is set.
func stepAg(name, cmd, stepErr string) model.DeploymentAgent {
	return model.DeploymentAgent{Name: name, State: model.AgentArmed, Command: cmd, StepError: stepErr}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name     string
		d        *model.Deployment
		to       model.DeploymentState
		rollback []string
		reason   string
	}{
		{"staging goes on", dep(model.Preparing, false, ag("a", model.AgentStaged, "", false), ag("b", model.AgentStaging, "x", false)), "", nil, ""},
		{"all staged", dep(model.Preparing, false, ag("a", model.AgentStaged, "", false), ag("b", model.AgentStaged, "", false)), model.Prepared, nil, ""},
		{"stage failure ends at once", dep(model.Preparing, false, ag("a", model.AgentFailed, "", false), ag("b", model.AgentStaging, "x", false)), model.Failed, nil, "agent a: boom"},
		{"activation goes on", dep(model.Activating, false, ag("a", model.AgentActive, "", true), ag("b", model.AgentActivating, "x", false)), "", nil, ""},
		{"activation waits for all before rollback", dep(model.Activating, false, ag("a", model.AgentRolledBack, "", true), ag("b", model.AgentActivating, "x", false)), "", nil, ""},
		{"all active", dep(model.Activating, false, ag("a", model.AgentActive, "", true), ag("b", model.AgentActive, "", true)), model.Deployed, nil, ""},
		{"one failed after swap, one active", dep(model.Activating, false, ag("a", model.AgentRolledBack, "", true), ag("b", model.AgentActive, "", true)), "", []string{"b"}, "agent a: boom"},
		{"failed after swap without swapping back", dep(model.Activating, false, ag("a", model.AgentFailed, "", true), ag("b", model.AgentFailed, "", false)), "", []string{"a"}, ""},
		{"failed before any swap", dep(model.Activating, false, ag("a", model.AgentFailed, "", false)), model.Failed, nil, "before any swap"},
		{"only the failing one swapped, and went back", dep(model.Activating, false, ag("a", model.AgentRolledBack, "", true)), model.RolledBack, nil, "went back"},
		{"rollback goes on", dep(model.Activating, true, ag("a", model.AgentRolledBack, "", true), ag("b", model.AgentActive, "x", true)), "", nil, ""},
		{"rollback done", dep(model.Activating, true, ag("a", model.AgentRolledBack, "", true), ag("b", model.AgentRolledBack, "", true)), model.RolledBack, nil, "activation failed: x"},
		{"arm waits for every agent", inStep(model.StepArm, "", stepAg("a", "", ""), stepAg("b", "x", "")), "", nil, ""},
		{"arm waits for every agent, even after a failure", inStep(model.StepArm, "", stepAg("a", "", "damaged"), stepAg("b", "x", "")), "", nil, ""},
		{"all armed", inStep(model.StepArm, "", stepAg("a", "", ""), stepAg("b", "", "")), "", nil, "advance"},
		{"one arm failed: nobody commits", inStep(model.StepArm, "", stepAg("a", "", ""), stepAg("b", "", "damaged")), model.Prepared, nil, "readiness check (arm): agent b: damaged; nothing was swapped"},
		{"before_activate done", inStep(model.StepBefore, "", stepAg("a", "", "")), "", nil, "advance"},
		{"before_activate failed", inStep(model.StepBefore, "", stepAg("a", "", "exit 1")), model.Prepared, nil, "before_activate hook failed: agent a: exit 1; nothing was swapped"},
		{"after_activate after a failure that changed nothing", inStep(model.StepAfter, model.Prepared, stepAg("a", "", "")), model.Prepared, nil, "after_activate hooks ran"},
		{"after_activate after success", inStep(model.StepAfter, model.Deployed, stepAg("a", "", "")), model.Deployed, nil, "every agent runs the new releases"},
		{"after_activate failed after success", inStep(model.StepAfter, model.Deployed, stepAg("a", "", "exit 2")), model.Deployed, nil, "after_activate hooks failed: agent a: exit 2"},
		{"after_activate after a failure", inStep(model.StepAfter, model.Failed, stepAg("a", "", "")), model.Failed, nil, "activation failed: x; after_activate hooks ran"},
		{"after_activate goes on", inStep(model.StepAfter, model.Failed, stepAg("a", "x", "")), "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := next(tt.d)
			if st.advance {
				st.reason = "advance"
			}
			if st.to != tt.to || strings.Join(st.rollback, ",") != strings.Join(tt.rollback, ",") || !strings.Contains(st.reason, tt.reason) {
				t.Fatalf("next = %+v, want to %q rollback %v reason ~%q", st, tt.to, tt.rollback, tt.reason)
			}
		})
	}
}

func TestAfterFailure(t *testing.T) {
	tests := []struct {
		f    Failure
		want model.DeploymentState
	}{
		{FailNotReady, model.Prepared},
		{FailArm, model.Prepared},
		{FailBeforeHook, model.Prepared},
		{FailSQLUnchanged, model.Prepared},
		{FailSQLChanged, model.Failed},
		{FailCommit, model.Failed},
		{FailCommitSwapped, model.RolledBack},
	}
	for _, tt := range tests {
		if got := AfterFailure(tt.f); got != tt.want {
			t.Errorf("AfterFailure(%s) = %s, want %s", tt.f, got, tt.want)
		}
		if got := AfterFailure(tt.f); got == model.Prepared && !CanTransition(model.Activating, got) {
			t.Errorf("%s: ACTIVATING → %s is not in the transitions table", tt.f, got)
		}
	}
}

func TestBackToPrepared(t *testing.T) {
	d := inStep(model.StepAfter, model.Prepared, stepAg("a", "", ""), model.DeploymentAgent{Name: "b", State: model.AgentFailed, Error: "damaged", StepError: "damaged", BeforeRan: true})
	d.PreparedTime, d.ExpireTime, d.ActivateTime, d.StepTime = t0, t0.Add(96*time.Hour), t0.Add(time.Hour), t0.Add(time.Hour)
	d.ArmDuration, d.SQLDuration, d.Error = time.Second, time.Second, "arm failed"
	out := backToPrepared(d, t0.Add(2*time.Hour), "arm failed; PREPARED again")
	if d.State != model.Prepared || !d.PreparedTime.Equal(t0) || !d.ExpireTime.Equal(t0.Add(96*time.Hour)) || !d.ActivateTime.IsZero() ||
		d.Step != "" || d.Ending != "" || d.Error != "" || d.ArmDuration != 0 || d.SQLDuration != 0 || !d.FinishTime.IsZero() {
		t.Fatalf("after backToPrepared: %+v", d)
	}
	if last := d.History[len(d.History)-1]; last.State != model.Prepared || last.Message != "arm failed; PREPARED again" {
		t.Errorf("history: %+v", last)
	}
	if len(out) != 2 || out[0].Command.Kind != fleet.Disarm || out[1].Agent != "b" {
		t.Errorf("commands: %+v", out)
	}
	if b := d.Agents[1]; b.StepError != "" || b.BeforeRan || b.Error != "damaged" {
		t.Errorf("agent b: %+v", b)
	}
}

func TestApplyReport(t *testing.T) {
	tests := []struct {
		name    string
		d       *model.Deployment
		r       fleet.Report
		applied bool
		want    model.DeploymentAgent
	}{
		{"stage progress", dep(model.Preparing, false, ag("a", model.AgentPending, "c1", false)),
			fleet.Report{Agent: "a", CommandID: "c1", Outcome: fleet.Progress, ReleaseBytes: 10, TransferredBytes: 4}, true,
			model.DeploymentAgent{Name: "a", State: model.AgentStaging, Command: "c1", ReleaseBytes: 10, TransferredBytes: 4}},
		{"stage done", dep(model.Preparing, false, ag("a", model.AgentStaging, "c1", false)),
			fleet.Report{Agent: "a", CommandID: "c1", Outcome: fleet.Done, ReleaseBytes: 10, TransferredBytes: 10}, true,
			model.DeploymentAgent{Name: "a", State: model.AgentStaged, ReleaseBytes: 10, TransferredBytes: 10, SavedCounted: true}},
		{"stage failed: nothing saved yet", dep(model.Preparing, false, ag("a", model.AgentStaging, "c1", false)),
			fleet.Report{Agent: "a", CommandID: "c1", Outcome: fleet.CommandFailed, Error: "disk full", ReusedBytes: 3}, true,
			model.DeploymentAgent{Name: "a", State: model.AgentFailed, Error: "disk full", StepError: "disk full"}},
		{"stale command", dep(model.Preparing, false, ag("a", model.AgentStaging, "c1", false)),
			fleet.Report{Agent: "a", CommandID: "old", Outcome: fleet.Done}, false,
			model.DeploymentAgent{Name: "a", State: model.AgentStaging, Command: "c1"}},
		{"unknown agent", dep(model.Preparing, false, ag("a", model.AgentStaging, "c1", false)),
			fleet.Report{Agent: "zz", CommandID: "c1", Outcome: fleet.Done}, false,
			model.DeploymentAgent{Name: "a", State: model.AgentStaging, Command: "c1"}},
		{"activate failed, swapped back", dep(model.Activating, false, ag("a", model.AgentActivating, "c2", false)),
			fleet.Report{Agent: "a", CommandID: "c2", Outcome: fleet.CommandFailed, Error: "unhealthy", SwapTime: t0, SwappedBack: true}, true,
			model.DeploymentAgent{Name: "a", State: model.AgentRolledBack, Error: "unhealthy", StepError: "unhealthy", SwapTime: t0, SwappedBack: true}},
		{"commit failed without a reason", dep(model.Activating, false, ag("a", model.AgentActivating, "c2", false)),
			fleet.Report{Agent: "a", CommandID: "c2", Outcome: fleet.CommandFailed}, true,
			model.DeploymentAgent{Name: "a", State: model.AgentFailed, Error: "the agent reported a failure without a reason", StepError: "the agent reported a failure without a reason"}},
		{"commit done with validate hooks", dep(model.Activating, false, ag("a", model.AgentActivating, "c2", false)),
			fleet.Report{Agent: "a", CommandID: "c2", Outcome: fleet.Done, SwapTime: t0, Hooks: []model.HookResult{{Command: "smoke"}}}, true,
			model.DeploymentAgent{Name: "a", State: model.AgentActive, SwapTime: t0, Hooks: []model.HookResult{{Command: "smoke"}}}},
		{"rollback failed", dep(model.Activating, true, ag("a", model.AgentActive, "c3", true)),
			fleet.Report{Agent: "a", CommandID: "c3", Outcome: fleet.CommandFailed, Error: "disk"}, true,
			model.DeploymentAgent{Name: "a", State: model.AgentFailed, Error: "rollback failed: disk", StepError: "disk", SwapTime: t0}},
		{"arm stages first: progress adds to stage 1's bytes", armAg(model.DeploymentAgent{Name: "a", State: model.AgentStaged, Command: "c4", ReleaseBytes: 10, TransferredBytes: 10, ArmTransferredBytes: 2}),
			fleet.Report{Agent: "a", CommandID: "c4", Outcome: fleet.Progress, ReleaseBytes: 10, TransferredBytes: 5}, true,
			model.DeploymentAgent{Name: "a", State: model.AgentStaging, Command: "c4", ReleaseBytes: 10, TransferredBytes: 13, ArmTransferredBytes: 5}},
		{"armed", armAg(model.DeploymentAgent{Name: "a", State: model.AgentStaged, Command: "c4"}),
			fleet.Report{Agent: "a", CommandID: "c4", Outcome: fleet.Done}, true,
			model.DeploymentAgent{Name: "a", State: model.AgentArmed, SavedCounted: true}},
		{"arm failed", armAg(model.DeploymentAgent{Name: "a", State: model.AgentStaged, Command: "c4"}),
			fleet.Report{Agent: "a", CommandID: "c4", Outcome: fleet.CommandFailed, Error: "hash mismatch"}, true,
			model.DeploymentAgent{Name: "a", State: model.AgentFailed, Error: "hash mismatch", StepError: "hash mismatch"}},
		{"report on a final deployment", dep(model.Deployed, false, ag("a", model.AgentActive, "c2", true)),
			fleet.Report{Agent: "a", CommandID: "c2", Outcome: fleet.Done}, false,
			model.DeploymentAgent{Name: "a", State: model.AgentActive, Command: "c2", SwapTime: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := applyReport(tt.d, tt.r); got != tt.applied {
				t.Fatalf("applied = %v", got)
			}
			if got := tt.d.Agents[0]; !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("agent = %+v\nwant    %+v", got, tt.want)
			}
		})
	}
}

func armAg(a model.DeploymentAgent) *model.Deployment {
	d := dep(model.Activating, false, a)
	d.Step = model.StepArm
	return d
}

func TestTransitionRecordsHistory(t *testing.T) {
	d := &model.Deployment{ID: "d-1", State: model.Planned, Agents: []model.DeploymentAgent{{Name: "a", Command: "c"}}}
	transition(d, model.Preparing, t0, "alice", "go")
	transition(d, model.Failed, t0.Add(time.Minute), ControllerActor, "build broke")
	if len(d.History) != 2 || d.History[0].Actor != "alice" || d.History[1].State != model.Failed {
		t.Fatalf("history = %+v", d.History)
	}
	if d.Error != "build broke" || !d.FinishTime.Equal(t0.Add(time.Minute)) || !d.PrepareTime.Equal(t0) || d.Agents[0].Command != "" {
		t.Fatalf("deployment = %+v", d)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("FAILED → PREPARING did not panic")
		}
	}()
	transition(d, model.Preparing, t0, "alice", "again")
}

func TestFinishDeployed(t *testing.T) {
	d := &model.Deployment{ID: "d-7", ActivateTime: t0,
		Applications: []model.DeploymentApplication{{Name: "hello", VersionLabel: "v2", ReleaseID: "r2"}},
		Agents:       []model.DeploymentAgent{{Name: "a", SwapTime: t0.Add(2 * time.Second)}, {Name: "b", SwapTime: t0.Add(time.Second)}, {Name: "c", SwapTime: t0.Add(1500 * time.Millisecond)}}}
	env := &model.Environment{Name: "prod"}
	finishDeployed(d, env, t0.Add(3*time.Second))
	if d.ActivationSpread != time.Second {
		t.Fatalf("spread %v", d.ActivationSpread)
	}
	if v := env.DeployedVersions["hello"]; v.ReleaseID != "r2" || v.VersionLabel != "v2" || v.DeploymentID != "d-7" {
		t.Fatalf("deployed versions = %+v", env.DeployedVersions)
	}
}

func TestLeftOut(t *testing.T) {
	known := []*model.Agent{{Name: "fe1", Environment: "prod"}, {Name: "fe2", Environment: "prod"}, {Name: "fe3", Environment: "test"}}
	connected := []fleet.AgentView{{Agent: model.Agent{Name: "fe1", Environment: "prod"}, Connected: true}}
	if got := strings.Join(leftOut(known, connected, "prod"), ","); got != "fe2" {
		t.Fatalf("left out = %q, want fe2", got)
	}
}

func TestEnvironmentDefaults(t *testing.T) {
	tests := []struct {
		env      model.Environment
		wantTTL  time.Duration
		wantKeep int32
	}{
		{model.Environment{}, DefaultPreparedTTL, DefaultKeepReleases},
		{model.Environment{PreparedTTL: 2 * time.Hour, KeepReleases: 7}, 2 * time.Hour, 7},
	}
	for _, tt := range tests {
		if got := PreparedTTL(&tt.env); got != tt.wantTTL {
			t.Errorf("PreparedTTL(%+v) = %v, want %v", tt.env, got, tt.wantTTL)
		}
		if got := KeepReleases(&tt.env); got != tt.wantKeep {
			t.Errorf("KeepReleases(%+v) = %d, want %d", tt.env, got, tt.wantKeep)
		}
	}
}

func TestPreparedSummary(t *testing.T) {
	known := func(names ...string) []*model.Agent {
		var out []*model.Agent
		for _, n := range names {
			out = append(out, &model.Agent{Name: n, Environment: "prod", LastSeen: t0})
		}
		return out
	}
	staged := func(n string) model.DeploymentAgent { return model.DeploymentAgent{Name: n, State: model.AgentStaged} }
	tests := []struct {
		name   string
		agents []model.DeploymentAgent
		env    []*model.Agent
		want   string
	}{
		{"all", []model.DeploymentAgent{staged("fe1"), staged("fe2")}, known("fe1", "fe2"), "PREPARED on 2 of 2 front-ends: every one has the releases staged"},
		{"one offline", []model.DeploymentAgent{staged("fe1"), staged("fe2")}, known("fe1", "fe2", "fe3"),
			"PREPARED on 2 of 3 front-ends; fe3 not connected since 2026-03-01T02:00:00Z (a front-end that connects while PREPARED is staged at once, in the background)"},
		{"one staging, one failed", []model.DeploymentAgent{staged("fe1"), {Name: "fe2", State: model.AgentStaging}, {Name: "fe3", State: model.AgentFailed, Error: "disk full"}}, known("fe1", "fe2", "fe3"),
			"PREPARED on 1 of 3 front-ends; fe2 staging in the background; fe3 failed: disk full"},
		{"a removed one is not counted", []model.DeploymentAgent{staged("fe1")}, known("fe1"), "PREPARED on 1 of 1 front-ends: every"},
	}
	for _, tt := range tests {
		d := &model.Deployment{ID: "d-1", Environment: "prod", Agents: tt.agents}
		if got := preparedSummary(d, tt.env); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLateStage(t *testing.T) {
	view := func(name string, staged ...string) fleet.AgentView {
		return fleet.AgentView{Agent: model.Agent{Name: name, Applications: []model.AgentApplication{{Name: "hello", StagedReleaseIDs: staged}}}, Connected: true}
	}
	mk := func(agents ...model.DeploymentAgent) *model.Deployment {
		return &model.Deployment{ID: "d-1", State: model.Prepared, Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: "r2"}}, Agents: agents}
	}
	tests := []struct {
		name          string
		d             *model.Deployment
		v             fleet.AgentView
		wantCmd       string
		wantNote      string
		wantAgents    int
		wantLastState model.AgentState
	}{
		{"newcomer lacking the release", mk(model.DeploymentAgent{Name: "fe1", State: model.AgentStaged}), view("fe2"), "d-1.stage.fe2", "staging them there now, in the background", 2, model.AgentPending},
		{"newcomer holding it", mk(model.DeploymentAgent{Name: "fe1", State: model.AgentStaged}), view("fe2", "r2"), "", "holds the releases already", 2, model.AgentStaged},
		{"back, staged before", mk(model.DeploymentAgent{Name: "fe1", State: model.AgentStaged}), view("fe1", "r2"), "", "", 1, model.AgentStaged},
		{"back while its staging runs: resent", mk(model.DeploymentAgent{Name: "fe1", State: model.AgentStaging, Command: "d-1.stage.fe1"}), view("fe1"), "d-1.stage.fe1", "", 1, model.AgentStaging},
		{"back after its staging failed", mk(model.DeploymentAgent{Name: "fe1", State: model.AgentFailed, Error: "x"}), view("fe1"), "d-1.stage.fe1", "staging them there now", 1, model.AgentPending},
	}
	for _, tt := range tests {
		cmd, msg := lateStage(tt.d, tt.v)
		id := ""
		if cmd != nil {
			id = cmd.ID
			if cmd.Kind != fleet.Stage || len(cmd.Releases) != 1 {
				t.Errorf("%s: command %+v", tt.name, cmd)
			}
		}
		last := tt.d.Agents[len(tt.d.Agents)-1]
		if id != tt.wantCmd || !strings.Contains(msg, tt.wantNote) || (tt.wantNote == "") != (msg == "") || len(tt.d.Agents) != tt.wantAgents || last.State != tt.wantLastState {
			t.Errorf("%s: command %q note %q agents %+v", tt.name, id, msg, tt.d.Agents)
		}
	}
}
