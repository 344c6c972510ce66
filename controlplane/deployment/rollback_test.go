package deployment

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

func TestCheckRollback(t *testing.T) {
	deployed := func(id string, prev string) *model.Deployment {
		return &model.Deployment{ID: id, Environment: "prod", State: model.Deployed,
			Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: "r2", PreviousReleaseID: prev}}}
	}
	env := &model.Environment{Name: "prod", DeployedVersions: map[string]model.DeployedVersion{"hello": {ReleaseID: "r2", DeploymentID: "d-2"}}}
	rolling := deployed("d-2", "r1")
	rolling.RollingBack = true
	tests := []struct {
		name   string
		d      *model.Deployment
		others []*model.Deployment
		want   string
	}{
		{"ok", deployed("d-2", "r1"), []*model.Deployment{{ID: "d-3", State: model.Prepared}}, ""},
		{"not deployed", &model.Deployment{ID: "d-2", State: model.Failed}, nil, "only a DEPLOYED deployment can be rolled back"},
		{"already rolling back", rolling, nil, "is being rolled back already"},
		{"another is activating", deployed("d-2", "r1"), []*model.Deployment{{ID: "d-3", State: model.Activating}}, "deployment d-3 of environment prod is ACTIVATING"},
		{"not what runs now", deployed("d-1", "r0"), nil, "now runs release r2 from deployment d-2, not from d-1"},
		{"nothing before", deployed("d-2", ""), nil, "ran no release in environment prod before deployment d-2"},
	}
	for _, tt := range tests {
		err := checkRollback(tt.d, env, tt.others)
		if (tt.want == "") != (err == nil) || (err != nil && (!errors.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), tt.want))) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestRollbackByCommandSteps(t *testing.T) {
	rolling := func(st model.Stage2Step, agents ...model.DeploymentAgent) *model.Deployment {
		d := dep(model.Deployed, true, agents...)
		d.Error, d.Step = "", st
		return d
	}
	// arm: wait for every answer, then commit; nobody commits before.
	d := rolling(model.StepArm, ag("a", model.AgentActive, "c", true), ag("b", model.AgentActive, "c", true))
	if !applyReport(d, fleet.Report{Agent: "a", CommandID: "c", Outcome: fleet.Done}) || d.Agents[0].State != model.AgentArmed {
		t.Fatalf("a rollback arm report was not applied: %+v", d.Agents[0])
	}
	if st := next(d); st.advance || st.to != "" || st.rollbackFailed {
		t.Fatalf("next with one arm out = %+v", st)
	}
	applyReport(d, fleet.Report{Agent: "b", CommandID: "c", Outcome: fleet.Done})
	if st := next(d); !st.advance {
		t.Fatalf("next when all armed = %+v, want advance to commit", st)
	}
	// arm failure on one agent: stop, disarm all, nothing swapped.
	d = rolling(model.StepArm, ag("a", model.AgentActive, "c", true), ag("b", model.AgentActive, "c", true))
	applyReport(d, fleet.Report{Agent: "a", CommandID: "c", Outcome: fleet.Done})
	applyReport(d, fleet.Report{Agent: "b", CommandID: "c", Outcome: fleet.CommandFailed, Error: "damaged"})
	if st := next(d); !st.rollbackFailed || !st.disarm || !strings.Contains(st.reason, "agent b: damaged") || !strings.Contains(st.reason, "nothing was swapped") {
		t.Fatalf("next when one arm failed = %+v", st)
	}
	// commit: wait for every answer, then ROLLED_BACK.
	d = rolling(model.StepCommit, ag("a", model.AgentArmed, "c", true), ag("b", model.AgentArmed, "c", true))
	applyReport(d, fleet.Report{Agent: "a", CommandID: "c", Outcome: fleet.Done, SwapTime: t0})
	if st := next(d); st.to != "" || st.rollbackFailed {
		t.Fatalf("next with one commit out = %+v", st)
	}
	applyReport(d, fleet.Report{Agent: "b", CommandID: "c", Outcome: fleet.Done, SwapTime: t0.Add(time.Millisecond)})
	if st := next(d); st.to != model.RolledBack || !strings.Contains(st.reason, "the database is NOT rolled back") || !strings.Contains(st.reason, "spread 1ms") {
		t.Fatalf("next when all went back = %+v", st)
	}
	if d.Agents[1].State != model.AgentRolledBack || !d.Agents[1].SwappedBack {
		t.Fatalf("agent after its rollback commit: %+v", d.Agents[1])
	}
	// commit failure: stays DEPLOYED with the error, retry said.
	d = rolling(model.StepCommit, ag("a", model.AgentArmed, "c", true))
	applyReport(d, fleet.Report{Agent: "a", CommandID: "c", Outcome: fleet.CommandFailed, Error: "disk full"})
	if st := next(d); !st.rollbackFailed || st.disarm || !strings.Contains(st.reason, "agent a: disk full") || !strings.Contains(st.reason, "cutoverctl deploy rollback d-1") {
		t.Fatalf("next when one commit failed = %+v", st)
	}
}

func TestRestoreDeployed(t *testing.T) {
	prev := model.DeployedVersion{VersionLabel: "v1", ReleaseID: "r1", DeploymentID: "d-1", DeployTime: t0}
	d := &model.Deployment{ID: "d-2", Applications: []model.DeploymentApplication{
		{Name: "hello", ReleaseID: "r2", PreviousReleaseID: "r1", Previous: &prev},
		{Name: "old", ReleaseID: "o2", PreviousReleaseID: "o1"},
		{Name: "new", ReleaseID: "n1"}}}
	env := &model.Environment{Name: "prod", DeployedVersions: map[string]model.DeployedVersion{
		"hello": {ReleaseID: "r2", DeploymentID: "d-2"}, "old": {ReleaseID: "o2", DeploymentID: "d-2"}, "new": {ReleaseID: "n1", DeploymentID: "d-2"}}}
	restoreDeployed(d, env, t0.Add(time.Hour))
	if env.DeployedVersions["hello"] != prev || env.DeployedVersions["old"].ReleaseID != "o1" || len(env.DeployedVersions) != 2 || !env.UpdateTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("deployed versions after restore = %+v", env.DeployedVersions)
	}
}

func TestFinishDeployedKeepsWhatRanBefore(t *testing.T) {
	prev := model.DeployedVersion{VersionLabel: "v1", ReleaseID: "r1", DeploymentID: "d-1", DeployTime: t0}
	d := &model.Deployment{ID: "d-2", Applications: []model.DeploymentApplication{{Name: "hello", ReleaseID: "r2"}, {Name: "new", ReleaseID: "n1"}}}
	env := &model.Environment{Name: "prod", DeployedVersions: map[string]model.DeployedVersion{"hello": prev}}
	finishDeployed(d, env, t0.Add(time.Hour))
	if d.Applications[0].Previous == nil || *d.Applications[0].Previous != prev || d.Applications[1].Previous != nil {
		t.Fatalf("previous = %+v", d.Applications)
	}
}

func TestNotConnected(t *testing.T) {
	d := &model.Deployment{Agents: []model.DeploymentAgent{{Name: "fe1"}, {Name: "fe2"}, {Name: "fe3"}}}
	connected := []fleet.AgentView{{Agent: model.Agent{Name: "fe2"}, Connected: true}, {Agent: model.Agent{Name: "fe9"}, Connected: true}}
	if got := strings.Join(notConnected(d, connected), ","); got != "fe1,fe3" {
		t.Fatalf("not connected = %q, want fe1,fe3", got)
	}
}

// TestRollbackByCommandHookSteps: the before_activate step of a rollback
// advances to the commit, or stops it with every agent disarmed; the
// after_activate step ends the rollback as decided before it, saying which
// hooks failed.
func TestRollbackByCommandHookSteps(t *testing.T) {
	rolling := func(st model.Stage2Step, ending model.DeploymentState, errMsg string, outcome fleet.Outcome) step {
		d := dep(model.Deployed, true, ag("a", model.AgentActive, "c", true))
		d.Step, d.Ending, d.Error, d.RollbackError = st, ending, "", errMsg
		r := fleet.Report{Agent: "a", CommandID: "c", Outcome: outcome}
		if outcome == fleet.CommandFailed {
			r.Error = "hook exited with status 4"
		}
		if !applyReport(d, r) {
			t.Fatalf("the report to the %s step was not applied", st)
		}
		return next(d)
	}
	tests := []struct {
		name    string
		st      step
		want    step
		reasons []string
	}{
		{"before_activate done", rolling(model.StepBefore, "", "", fleet.Done), step{advance: true}, nil},
		{"before_activate failed", rolling(model.StepBefore, "", "", fleet.CommandFailed), step{rollbackFailed: true, disarm: true},
			[]string{"before_activate hooks", "agent a: hook exited with status 4", "nothing was swapped", "cutoverctl deploy rollback d-1"}},
		{"after_activate done, rolled back", rolling(model.StepAfter, model.RolledBack, "", fleet.Done), step{to: model.RolledBack},
			[]string{"rolled back by command", "the database is NOT rolled back"}},
		{"after_activate failed, rolled back", rolling(model.StepAfter, model.RolledBack, "", fleet.CommandFailed), step{to: model.RolledBack},
			[]string{"rolled back by command", "but after_activate hooks failed: agent a: hook exited with status 4"}},
		{"after_activate done, rollback failed", rolling(model.StepAfter, model.Deployed, "rollback failed at commit: x", fleet.Done), step{rollbackFailed: true},
			[]string{"rollback failed at commit: x", "after_activate hooks ran on the agents where before_activate ran"}},
	}
	for _, tt := range tests {
		got := tt.st
		if got.advance != tt.want.advance || got.to != tt.want.to || got.rollbackFailed != tt.want.rollbackFailed || got.disarm != tt.want.disarm {
			t.Errorf("%s: next = %+v, want %+v", tt.name, got, tt.want)
		}
		for _, r := range tt.reasons {
			if !strings.Contains(got.reason, r) {
				t.Errorf("%s: reason %q lacks %q", tt.name, got.reason, r)
			}
		}
	}
}

// TestRollbackHooks: the hooks of the releases that ran before come from
// their manifests; one the controller no longer holds has none and is named.
func TestRollbackHooks(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := &manifest.Manifest{Application: "hello", Spec: appspec.Spec{Name: "hello",
		Hooks: appspec.Hooks{AfterActivate: []appspec.Hook{{Command: "resume"}}}}}
	b := m.Encode()
	r1 := manifest.ReleaseID(b)
	d := &model.Deployment{ID: "d-2", Applications: []model.DeploymentApplication{
		{Name: "hello", ReleaseID: "r2", PreviousReleaseID: r1}, {Name: "gone", ReleaseID: "g2", PreviousReleaseID: "g1"}}}
	err = st.Update(func(tx model.Tx) error {
		if err := tx.PutRelease(&model.Release{ID: r1, Application: "hello"}, b); err != nil {
			return err
		}
		hooks, unknown, err := rollbackHooks(tx, d)
		if err != nil {
			return err
		}
		if len(hooks) != 1 || hooks[0].app != "hello" || len(hooks[0].hooks.AfterActivate) != 1 {
			t.Errorf("hooks = %+v, want hello's after_activate hook", hooks)
		}
		if len(unknown) != 1 || !strings.Contains(unknown[0], "release g1 of gone") {
			t.Errorf("unknown = %q, want release g1 of gone", unknown)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSettled: a watch ends at a final state, except while a DEPLOYED
// deployment is being rolled back by command; a deployment that ended
// ROLLED_BACK (RollingBack left set) is settled.
func TestSettled(t *testing.T) {
	tests := []struct {
		state       model.DeploymentState
		rollingBack bool
		want        bool
	}{
		{model.Activating, false, false},
		{model.Activating, true, false},
		{model.Deployed, false, true},
		{model.Deployed, true, false},
		{model.RolledBack, true, true},
		{model.Failed, true, true},
		{model.Aborted, false, true},
	}
	for _, tt := range tests {
		if got := Settled(&model.Deployment{State: tt.state, RollingBack: tt.rollingBack}); got != tt.want {
			t.Errorf("Settled(%s, rolling back %v) = %v, want %v", tt.state, tt.rollingBack, got, tt.want)
		}
	}
}
