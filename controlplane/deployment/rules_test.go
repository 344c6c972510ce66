package deployment

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

func TestCanTransition(t *testing.T) {
	all := []store.DeploymentState{store.Planned, store.Preparing, store.Prepared, store.Activating,
		store.Deployed, store.Failed, store.Aborted, store.Expired, store.RolledBack}
	allowed := map[[2]store.DeploymentState]bool{
		{store.Planned, store.Preparing}:     true,
		{store.Planned, store.Aborted}:       true,
		{store.Preparing, store.Prepared}:    true,
		{store.Preparing, store.Failed}:      true,
		{store.Preparing, store.Aborted}:     true,
		{store.Prepared, store.Activating}:   true,
		{store.Prepared, store.Aborted}:      true,
		{store.Prepared, store.Expired}:      true,
		{store.Prepared, store.Failed}:       true,
		{store.Activating, store.Deployed}:   true,
		{store.Activating, store.Failed}:     true,
		{store.Activating, store.RolledBack}: true,
		{store.Activating, store.Prepared}:   true, // a stage 2 that failed before anything changed
		{store.Deployed, store.RolledBack}:   true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := CanTransition(from, to); got != allowed[[2]store.DeploymentState{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, got)
			}
		}
	}
	for _, s := range all {
		wantFinal := s == store.Deployed || s == store.Failed || s == store.Aborted || s == store.Expired || s == store.RolledBack
		if Final(s) != wantFinal {
			t.Errorf("Final(%s) = %v", s, Final(s))
		}
		wantBusy := s == store.Preparing || s == store.Prepared || s == store.Activating
		if Busy(s) != wantBusy {
			t.Errorf("Busy(%s) = %v", s, Busy(s))
		}
	}
}

func TestChecks(t *testing.T) {
	planned := &store.Deployment{ID: "d-2", Environment: "prod", State: store.Planned}
	prepared := &store.Deployment{ID: "d-1", Environment: "prod", State: store.Prepared}
	otherEnv := &store.Deployment{ID: "d-3", Environment: "test", State: store.Activating}
	twoStage := &store.Environment{Name: "prod", TwoStage: true}
	oneStage := &store.Environment{Name: "prod"}
	tests := []struct {
		name string
		err  error
		want string // "" means no error
	}{
		{"prepare ok", checkPrepare(planned, twoStage, []*store.Deployment{planned, otherEnv}), ""},
		{"prepare single-stage env", checkPrepare(planned, oneStage, nil), "cutoverctl env update prod --two-stage"},
		{"prepare with one in the way", checkPrepare(planned, twoStage, []*store.Deployment{prepared, planned}), "deployment d-1 of environment prod is PREPARED"},
		{"prepare twice", checkPrepare(prepared, twoStage, nil), "is PREPARED, not PLANNED"},
		{"start ok on single-stage", checkStartable(planned, nil, "start"), ""},
		{"continue planned", checkContinue(planned, &store.Environment{}, t0), "is PLANNED, not PREPARED"},
		{"continue prepared", checkContinue(prepared, &store.Environment{}, t0), ""},
		{"continue without the approval required", checkContinue(prepared, &store.Environment{Name: "prod", RequireApproval: true}, t0), "needs an approval"},
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
	d := &store.Deployment{ID: "d-1", Environment: "prod",
		Applications: []store.DeploymentApplication{{Name: "hello", ReleaseID: "r2"}},
		Agents:       []store.DeploymentAgent{{Name: "fe1"}, {Name: "fe2"}}}
	holds := func(name string, ids ...string) fleet.AgentView {
		return fleet.AgentView{Agent: store.Agent{Name: name, Applications: []store.AgentApplication{{Name: "hello", RunningReleaseID: "r1", StagedReleaseIDs: ids}}}, Connected: true}
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
func dep(st store.DeploymentState, rollingBack bool, agents ...store.DeploymentAgent) *store.Deployment {
	return &store.Deployment{ID: "d-1", Environment: "prod", State: st, RollingBack: rollingBack, Agents: agents, Error: "activation failed: x"}
}

func ag(name string, st store.AgentState, cmd string, swapped bool) store.DeploymentAgent {
	a := store.DeploymentAgent{Name: name, State: st, Command: cmd}
	if swapped {
		a.SwapTime = t0
	}
	if st == store.AgentFailed || st == store.AgentRolledBack {
		a.Error = "boom"
	}
	return a
}

// inStep builds an ACTIVATING deployment in stage 2 step st, ending in ending.
func inStep(st store.Stage2Step, ending store.DeploymentState, agents ...store.DeploymentAgent) *store.Deployment {
	d := dep(store.Activating, false, agents...)
	d.Step, d.Ending = st, ending
	return d
}

// stepAg is an agent with a command out (cmd "x") or done, failed in the current step if stepErr is set.
func stepAg(name, cmd, stepErr string) store.DeploymentAgent {
	return store.DeploymentAgent{Name: name, State: store.AgentArmed, Command: cmd, StepError: stepErr}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name     string
		d        *store.Deployment
		to       store.DeploymentState
		rollback []string
		reason   string
	}{
		{"staging goes on", dep(store.Preparing, false, ag("a", store.AgentStaged, "", false), ag("b", store.AgentStaging, "x", false)), "", nil, ""},
		{"all staged", dep(store.Preparing, false, ag("a", store.AgentStaged, "", false), ag("b", store.AgentStaged, "", false)), store.Prepared, nil, ""},
		{"stage failure ends at once", dep(store.Preparing, false, ag("a", store.AgentFailed, "", false), ag("b", store.AgentStaging, "x", false)), store.Failed, nil, "agent a: boom"},
		{"activation goes on", dep(store.Activating, false, ag("a", store.AgentActive, "", true), ag("b", store.AgentActivating, "x", false)), "", nil, ""},
		{"activation waits for all before rollback", dep(store.Activating, false, ag("a", store.AgentRolledBack, "", true), ag("b", store.AgentActivating, "x", false)), "", nil, ""},
		{"all active", dep(store.Activating, false, ag("a", store.AgentActive, "", true), ag("b", store.AgentActive, "", true)), store.Deployed, nil, ""},
		{"one failed after swap, one active", dep(store.Activating, false, ag("a", store.AgentRolledBack, "", true), ag("b", store.AgentActive, "", true)), "", []string{"b"}, "agent a: boom"},
		{"failed after swap without swapping back", dep(store.Activating, false, ag("a", store.AgentFailed, "", true), ag("b", store.AgentFailed, "", false)), "", []string{"a"}, ""},
		{"failed before any swap", dep(store.Activating, false, ag("a", store.AgentFailed, "", false)), store.Failed, nil, "before any swap"},
		{"only the failing one swapped, and went back", dep(store.Activating, false, ag("a", store.AgentRolledBack, "", true)), store.RolledBack, nil, "went back"},
		{"rollback goes on", dep(store.Activating, true, ag("a", store.AgentRolledBack, "", true), ag("b", store.AgentActive, "x", true)), "", nil, ""},
		{"rollback done", dep(store.Activating, true, ag("a", store.AgentRolledBack, "", true), ag("b", store.AgentRolledBack, "", true)), store.RolledBack, nil, "activation failed: x"},
		{"arm waits for every agent", inStep(store.StepArm, "", stepAg("a", "", ""), stepAg("b", "x", "")), "", nil, ""},
		{"arm waits for every agent, even after a failure", inStep(store.StepArm, "", stepAg("a", "", "damaged"), stepAg("b", "x", "")), "", nil, ""},
		{"all armed", inStep(store.StepArm, "", stepAg("a", "", ""), stepAg("b", "", "")), "", nil, "advance"},
		{"one arm failed: nobody commits", inStep(store.StepArm, "", stepAg("a", "", ""), stepAg("b", "", "damaged")), store.Prepared, nil, "readiness check (arm): agent b: damaged; nothing was swapped"},
		{"before_activate done", inStep(store.StepBefore, "", stepAg("a", "", "")), "", nil, "advance"},
		{"before_activate failed", inStep(store.StepBefore, "", stepAg("a", "", "exit 1")), store.Prepared, nil, "before_activate hook failed: agent a: exit 1; nothing was swapped"},
		{"after_activate after a failure that changed nothing", inStep(store.StepAfter, store.Prepared, stepAg("a", "", "")), store.Prepared, nil, "after_activate hooks ran"},
		{"after_activate after success", inStep(store.StepAfter, store.Deployed, stepAg("a", "", "")), store.Deployed, nil, "every agent runs the new releases"},
		{"after_activate failed after success", inStep(store.StepAfter, store.Deployed, stepAg("a", "", "exit 2")), store.Deployed, nil, "after_activate hooks failed: agent a: exit 2"},
		{"after_activate after a failure", inStep(store.StepAfter, store.Failed, stepAg("a", "", "")), store.Failed, nil, "activation failed: x; after_activate hooks ran"},
		{"after_activate goes on", inStep(store.StepAfter, store.Failed, stepAg("a", "x", "")), "", nil, ""},
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
		want store.DeploymentState
	}{
		{FailNotReady, store.Prepared},
		{FailArm, store.Prepared},
		{FailBeforeHook, store.Prepared},
		{FailSQLUnchanged, store.Prepared},
		{FailSQLChanged, store.Failed},
		{FailCommit, store.Failed},
		{FailCommitSwapped, store.RolledBack},
	}
	for _, tt := range tests {
		if got := AfterFailure(tt.f); got != tt.want {
			t.Errorf("AfterFailure(%s) = %s, want %s", tt.f, got, tt.want)
		}
		if got := AfterFailure(tt.f); got == store.Prepared && !CanTransition(store.Activating, got) {
			t.Errorf("%s: ACTIVATING → %s is not in the transitions table", tt.f, got)
		}
	}
}

func TestBackToPrepared(t *testing.T) {
	d := inStep(store.StepAfter, store.Prepared, stepAg("a", "", ""), store.DeploymentAgent{Name: "b", State: store.AgentFailed, Error: "damaged", StepError: "damaged", BeforeRan: true})
	d.PreparedTime, d.ExpireTime, d.ActivateTime, d.StepTime = t0, t0.Add(96*time.Hour), t0.Add(time.Hour), t0.Add(time.Hour)
	d.ArmDuration, d.SQLDuration, d.Error = time.Second, time.Second, "arm failed"
	out := backToPrepared(d, t0.Add(2*time.Hour), "arm failed; PREPARED again")
	if d.State != store.Prepared || !d.PreparedTime.Equal(t0) || !d.ExpireTime.Equal(t0.Add(96*time.Hour)) || !d.ActivateTime.IsZero() ||
		d.Step != "" || d.Ending != "" || d.Error != "" || d.ArmDuration != 0 || d.SQLDuration != 0 || !d.FinishTime.IsZero() {
		t.Fatalf("after backToPrepared: %+v", d)
	}
	if last := d.History[len(d.History)-1]; last.State != store.Prepared || last.Message != "arm failed; PREPARED again" {
		t.Errorf("history: %+v", last)
	}
	if len(out) != 2 || out[0].cmd.Kind != fleet.Disarm || out[1].agent != "b" {
		t.Errorf("commands: %+v", out)
	}
	if b := d.Agents[1]; b.StepError != "" || b.BeforeRan || b.Error != "damaged" {
		t.Errorf("agent b: %+v", b)
	}
}

func TestApplyReport(t *testing.T) {
	tests := []struct {
		name    string
		d       *store.Deployment
		r       fleet.Report
		applied bool
		want    store.DeploymentAgent
	}{
		{"stage progress", dep(store.Preparing, false, ag("a", store.AgentPending, "c1", false)),
			fleet.Report{Agent: "a", CommandID: "c1", Outcome: fleet.Progress, ReleaseBytes: 10, TransferredBytes: 4}, true,
			store.DeploymentAgent{Name: "a", State: store.AgentStaging, Command: "c1", ReleaseBytes: 10, TransferredBytes: 4}},
		{"stage done", dep(store.Preparing, false, ag("a", store.AgentStaging, "c1", false)),
			fleet.Report{Agent: "a", CommandID: "c1", Outcome: fleet.Done, ReleaseBytes: 10, TransferredBytes: 10}, true,
			store.DeploymentAgent{Name: "a", State: store.AgentStaged, ReleaseBytes: 10, TransferredBytes: 10, SavedCounted: true}},
		{"stage failed: nothing saved yet", dep(store.Preparing, false, ag("a", store.AgentStaging, "c1", false)),
			fleet.Report{Agent: "a", CommandID: "c1", Outcome: fleet.CommandFailed, Error: "disk full", ReusedBytes: 3}, true,
			store.DeploymentAgent{Name: "a", State: store.AgentFailed, Error: "disk full", StepError: "disk full"}},
		{"stale command", dep(store.Preparing, false, ag("a", store.AgentStaging, "c1", false)),
			fleet.Report{Agent: "a", CommandID: "old", Outcome: fleet.Done}, false,
			store.DeploymentAgent{Name: "a", State: store.AgentStaging, Command: "c1"}},
		{"unknown agent", dep(store.Preparing, false, ag("a", store.AgentStaging, "c1", false)),
			fleet.Report{Agent: "zz", CommandID: "c1", Outcome: fleet.Done}, false,
			store.DeploymentAgent{Name: "a", State: store.AgentStaging, Command: "c1"}},
		{"activate failed, swapped back", dep(store.Activating, false, ag("a", store.AgentActivating, "c2", false)),
			fleet.Report{Agent: "a", CommandID: "c2", Outcome: fleet.CommandFailed, Error: "unhealthy", SwapTime: t0, SwappedBack: true}, true,
			store.DeploymentAgent{Name: "a", State: store.AgentRolledBack, Error: "unhealthy", StepError: "unhealthy", SwapTime: t0, SwappedBack: true}},
		{"commit failed without a reason", dep(store.Activating, false, ag("a", store.AgentActivating, "c2", false)),
			fleet.Report{Agent: "a", CommandID: "c2", Outcome: fleet.CommandFailed}, true,
			store.DeploymentAgent{Name: "a", State: store.AgentFailed, Error: "the agent reported a failure without a reason", StepError: "the agent reported a failure without a reason"}},
		{"commit done with validate hooks", dep(store.Activating, false, ag("a", store.AgentActivating, "c2", false)),
			fleet.Report{Agent: "a", CommandID: "c2", Outcome: fleet.Done, SwapTime: t0, Hooks: []store.HookResult{{Command: "smoke"}}}, true,
			store.DeploymentAgent{Name: "a", State: store.AgentActive, SwapTime: t0, Hooks: []store.HookResult{{Command: "smoke"}}}},
		{"rollback failed", dep(store.Activating, true, ag("a", store.AgentActive, "c3", true)),
			fleet.Report{Agent: "a", CommandID: "c3", Outcome: fleet.CommandFailed, Error: "disk"}, true,
			store.DeploymentAgent{Name: "a", State: store.AgentFailed, Error: "rollback failed: disk", StepError: "disk", SwapTime: t0}},
		{"arm stages first: progress adds to stage 1's bytes", armAg(store.DeploymentAgent{Name: "a", State: store.AgentStaged, Command: "c4", ReleaseBytes: 10, TransferredBytes: 10, ArmTransferredBytes: 2}),
			fleet.Report{Agent: "a", CommandID: "c4", Outcome: fleet.Progress, ReleaseBytes: 10, TransferredBytes: 5}, true,
			store.DeploymentAgent{Name: "a", State: store.AgentStaging, Command: "c4", ReleaseBytes: 10, TransferredBytes: 13, ArmTransferredBytes: 5}},
		{"armed", armAg(store.DeploymentAgent{Name: "a", State: store.AgentStaged, Command: "c4"}),
			fleet.Report{Agent: "a", CommandID: "c4", Outcome: fleet.Done}, true,
			store.DeploymentAgent{Name: "a", State: store.AgentArmed, SavedCounted: true}},
		{"arm failed", armAg(store.DeploymentAgent{Name: "a", State: store.AgentStaged, Command: "c4"}),
			fleet.Report{Agent: "a", CommandID: "c4", Outcome: fleet.CommandFailed, Error: "hash mismatch"}, true,
			store.DeploymentAgent{Name: "a", State: store.AgentFailed, Error: "hash mismatch", StepError: "hash mismatch"}},
		{"report on a final deployment", dep(store.Deployed, false, ag("a", store.AgentActive, "c2", true)),
			fleet.Report{Agent: "a", CommandID: "c2", Outcome: fleet.Done}, false,
			store.DeploymentAgent{Name: "a", State: store.AgentActive, Command: "c2", SwapTime: t0}},
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

func armAg(a store.DeploymentAgent) *store.Deployment {
	d := dep(store.Activating, false, a)
	d.Step = store.StepArm
	return d
}

func TestTransitionRecordsHistory(t *testing.T) {
	d := &store.Deployment{ID: "d-1", State: store.Planned, Agents: []store.DeploymentAgent{{Name: "a", Command: "c"}}}
	transition(d, store.Preparing, t0, "alice", "go")
	transition(d, store.Failed, t0.Add(time.Minute), ControllerActor, "build broke")
	if len(d.History) != 2 || d.History[0].Actor != "alice" || d.History[1].State != store.Failed {
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
	transition(d, store.Preparing, t0, "alice", "again")
}

func TestFinishDeployed(t *testing.T) {
	d := &store.Deployment{ID: "d-7", ActivateTime: t0,
		Applications: []store.DeploymentApplication{{Name: "hello", VersionLabel: "v2", ReleaseID: "r2"}},
		Agents:       []store.DeploymentAgent{{Name: "a", SwapTime: t0.Add(2 * time.Second)}, {Name: "b", SwapTime: t0.Add(time.Second)}, {Name: "c", SwapTime: t0.Add(1500 * time.Millisecond)}}}
	env := &store.Environment{Name: "prod"}
	finishDeployed(d, env, t0.Add(3*time.Second))
	if d.ActivationSpread != time.Second {
		t.Fatalf("spread %v", d.ActivationSpread)
	}
	if v := env.DeployedVersions["hello"]; v.ReleaseID != "r2" || v.VersionLabel != "v2" || v.DeploymentID != "d-7" {
		t.Fatalf("deployed versions = %+v", env.DeployedVersions)
	}
}

func TestLeftOut(t *testing.T) {
	known := []*store.Agent{{Name: "fe1", Environment: "prod"}, {Name: "fe2", Environment: "prod"}, {Name: "fe3", Environment: "test"}}
	connected := []fleet.AgentView{{Agent: store.Agent{Name: "fe1", Environment: "prod"}, Connected: true}}
	if got := strings.Join(leftOut(known, connected, "prod"), ","); got != "fe2" {
		t.Fatalf("left out = %q, want fe2", got)
	}
}

func TestEnvironmentDefaults(t *testing.T) {
	tests := []struct {
		env      store.Environment
		wantTTL  time.Duration
		wantKeep int32
	}{
		{store.Environment{}, DefaultPreparedTTL, DefaultKeepReleases},
		{store.Environment{PreparedTTL: 2 * time.Hour, KeepReleases: 7}, 2 * time.Hour, 7},
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
	known := func(names ...string) []*store.Agent {
		var out []*store.Agent
		for _, n := range names {
			out = append(out, &store.Agent{Name: n, Environment: "prod", LastSeen: t0})
		}
		return out
	}
	staged := func(n string) store.DeploymentAgent { return store.DeploymentAgent{Name: n, State: store.AgentStaged} }
	tests := []struct {
		name   string
		agents []store.DeploymentAgent
		env    []*store.Agent
		want   string
	}{
		{"all", []store.DeploymentAgent{staged("fe1"), staged("fe2")}, known("fe1", "fe2"), "PREPARED on 2 of 2 front-ends: every one has the releases staged"},
		{"one offline", []store.DeploymentAgent{staged("fe1"), staged("fe2")}, known("fe1", "fe2", "fe3"),
			"PREPARED on 2 of 3 front-ends; fe3 not connected since 2026-03-01T02:00:00Z (a front-end that connects while PREPARED is staged at once, in the background)"},
		{"one staging, one failed", []store.DeploymentAgent{staged("fe1"), {Name: "fe2", State: store.AgentStaging}, {Name: "fe3", State: store.AgentFailed, Error: "disk full"}}, known("fe1", "fe2", "fe3"),
			"PREPARED on 1 of 3 front-ends; fe2 staging in the background; fe3 failed: disk full"},
		{"a removed one is not counted", []store.DeploymentAgent{staged("fe1")}, known("fe1"), "PREPARED on 1 of 1 front-ends: every"},
	}
	for _, tt := range tests {
		d := &store.Deployment{ID: "d-1", Environment: "prod", Agents: tt.agents}
		if got := preparedSummary(d, tt.env); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLateStage(t *testing.T) {
	view := func(name string, staged ...string) fleet.AgentView {
		return fleet.AgentView{Agent: store.Agent{Name: name, Applications: []store.AgentApplication{{Name: "hello", StagedReleaseIDs: staged}}}, Connected: true}
	}
	mk := func(agents ...store.DeploymentAgent) *store.Deployment {
		return &store.Deployment{ID: "d-1", State: store.Prepared, Applications: []store.DeploymentApplication{{Name: "hello", ReleaseID: "r2"}}, Agents: agents}
	}
	tests := []struct {
		name          string
		d             *store.Deployment
		v             fleet.AgentView
		wantCmd       string
		wantNote      string
		wantAgents    int
		wantLastState store.AgentState
	}{
		{"newcomer lacking the release", mk(store.DeploymentAgent{Name: "fe1", State: store.AgentStaged}), view("fe2"), "d-1.stage.fe2", "staging them there now, in the background", 2, store.AgentPending},
		{"newcomer holding it", mk(store.DeploymentAgent{Name: "fe1", State: store.AgentStaged}), view("fe2", "r2"), "", "holds the releases already", 2, store.AgentStaged},
		{"back, staged before", mk(store.DeploymentAgent{Name: "fe1", State: store.AgentStaged}), view("fe1", "r2"), "", "", 1, store.AgentStaged},
		{"back while its staging runs: resent", mk(store.DeploymentAgent{Name: "fe1", State: store.AgentStaging, Command: "d-1.stage.fe1"}), view("fe1"), "d-1.stage.fe1", "", 1, store.AgentStaging},
		{"back after its staging failed", mk(store.DeploymentAgent{Name: "fe1", State: store.AgentFailed, Error: "x"}), view("fe1"), "d-1.stage.fe1", "staging them there now", 1, store.AgentPending},
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
