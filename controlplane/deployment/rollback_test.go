package deployment

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestCheckRollback(t *testing.T) {
	deployed := func(id string, prev string) *store.Deployment {
		return &store.Deployment{ID: id, Environment: "prod", State: store.Deployed,
			Applications: []store.DeploymentApplication{{Name: "hello", ReleaseID: "r2", PreviousReleaseID: prev}}}
	}
	env := &store.Environment{Name: "prod", DeployedVersions: map[string]store.DeployedVersion{"hello": {ReleaseID: "r2", DeploymentID: "d-2"}}}
	rolling := deployed("d-2", "r1")
	rolling.RollingBack = true
	tests := []struct {
		name   string
		d      *store.Deployment
		others []*store.Deployment
		want   string
	}{
		{"ok", deployed("d-2", "r1"), []*store.Deployment{{ID: "d-3", State: store.Prepared}}, ""},
		{"not deployed", &store.Deployment{ID: "d-2", State: store.Failed}, nil, "only a DEPLOYED deployment can be rolled back"},
		{"already rolling back", rolling, nil, "is being rolled back already"},
		{"another is activating", deployed("d-2", "r1"), []*store.Deployment{{ID: "d-3", State: store.Activating}}, "deployment d-3 of environment prod is ACTIVATING"},
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
	rolling := func(st store.Stage2Step, agents ...store.DeploymentAgent) *store.Deployment {
		d := dep(store.Deployed, true, agents...)
		d.Error, d.Step = "", st
		return d
	}
	// arm: wait for every answer, then commit; nobody commits before.
	d := rolling(store.StepArm, ag("a", store.AgentActive, "c", true), ag("b", store.AgentActive, "c", true))
	if !applyReport(d, fleet.Report{Agent: "a", CommandID: "c", Outcome: fleet.Done}) || d.Agents[0].State != store.AgentArmed {
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
	d = rolling(store.StepArm, ag("a", store.AgentActive, "c", true), ag("b", store.AgentActive, "c", true))
	applyReport(d, fleet.Report{Agent: "a", CommandID: "c", Outcome: fleet.Done})
	applyReport(d, fleet.Report{Agent: "b", CommandID: "c", Outcome: fleet.CommandFailed, Error: "damaged"})
	if st := next(d); !st.rollbackFailed || !st.disarm || !strings.Contains(st.reason, "agent b: damaged") || !strings.Contains(st.reason, "nothing was swapped") {
		t.Fatalf("next when one arm failed = %+v", st)
	}
	// commit: wait for every answer, then ROLLED_BACK.
	d = rolling(store.StepCommit, ag("a", store.AgentArmed, "c", true), ag("b", store.AgentArmed, "c", true))
	applyReport(d, fleet.Report{Agent: "a", CommandID: "c", Outcome: fleet.Done, SwapTime: t0})
	if st := next(d); st.to != "" || st.rollbackFailed {
		t.Fatalf("next with one commit out = %+v", st)
	}
	applyReport(d, fleet.Report{Agent: "b", CommandID: "c", Outcome: fleet.Done, SwapTime: t0.Add(time.Millisecond)})
	if st := next(d); st.to != store.RolledBack || !strings.Contains(st.reason, "the database is NOT rolled back") || !strings.Contains(st.reason, "spread 1ms") {
		t.Fatalf("next when all went back = %+v", st)
	}
	if d.Agents[1].State != store.AgentRolledBack || !d.Agents[1].SwappedBack {
		t.Fatalf("agent after its rollback commit: %+v", d.Agents[1])
	}
	// commit failure: stays DEPLOYED with the error, retry said.
	d = rolling(store.StepCommit, ag("a", store.AgentArmed, "c", true))
	applyReport(d, fleet.Report{Agent: "a", CommandID: "c", Outcome: fleet.CommandFailed, Error: "disk full"})
	if st := next(d); !st.rollbackFailed || st.disarm || !strings.Contains(st.reason, "agent a: disk full") || !strings.Contains(st.reason, "cutoverctl deploy rollback d-1") {
		t.Fatalf("next when one commit failed = %+v", st)
	}
}

func TestRestoreDeployed(t *testing.T) {
	prev := store.DeployedVersion{VersionLabel: "v1", ReleaseID: "r1", DeploymentID: "d-1", DeployTime: t0}
	d := &store.Deployment{ID: "d-2", Applications: []store.DeploymentApplication{
		{Name: "hello", ReleaseID: "r2", PreviousReleaseID: "r1", Previous: &prev},
		{Name: "old", ReleaseID: "o2", PreviousReleaseID: "o1"},
		{Name: "new", ReleaseID: "n1"}}}
	env := &store.Environment{Name: "prod", DeployedVersions: map[string]store.DeployedVersion{
		"hello": {ReleaseID: "r2", DeploymentID: "d-2"}, "old": {ReleaseID: "o2", DeploymentID: "d-2"}, "new": {ReleaseID: "n1", DeploymentID: "d-2"}}}
	restoreDeployed(d, env, t0.Add(time.Hour))
	if env.DeployedVersions["hello"] != prev || env.DeployedVersions["old"].ReleaseID != "o1" || len(env.DeployedVersions) != 2 || !env.UpdateTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("deployed versions after restore = %+v", env.DeployedVersions)
	}
}

func TestFinishDeployedKeepsWhatRanBefore(t *testing.T) {
	prev := store.DeployedVersion{VersionLabel: "v1", ReleaseID: "r1", DeploymentID: "d-1", DeployTime: t0}
	d := &store.Deployment{ID: "d-2", Applications: []store.DeploymentApplication{{Name: "hello", ReleaseID: "r2"}, {Name: "new", ReleaseID: "n1"}}}
	env := &store.Environment{Name: "prod", DeployedVersions: map[string]store.DeployedVersion{"hello": prev}}
	finishDeployed(d, env, t0.Add(time.Hour))
	if d.Applications[0].Previous == nil || *d.Applications[0].Previous != prev || d.Applications[1].Previous != nil {
		t.Fatalf("previous = %+v", d.Applications)
	}
}

func TestNotConnected(t *testing.T) {
	d := &store.Deployment{Agents: []store.DeploymentAgent{{Name: "fe1"}, {Name: "fe2"}, {Name: "fe3"}}}
	connected := []fleet.AgentView{{Agent: store.Agent{Name: "fe2"}, Connected: true}, {Agent: store.Agent{Name: "fe9"}, Connected: true}}
	if got := strings.Join(notConnected(d, connected), ","); got != "fe1,fe3" {
		t.Fatalf("not connected = %q, want fe1,fe3", got)
	}
}
