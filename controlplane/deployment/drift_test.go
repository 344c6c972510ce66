package deployment

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

const (
	relV1  = "1111111111111111aaaa"
	relV2  = "2222222222222222bbbb"
	relWeb = "3333333333333333cccc"
)

func recorded(apps map[string]string) *model.Environment {
	e := &model.Environment{Name: "production", DeployedVersions: map[string]model.DeployedVersion{}}
	for app, id := range apps {
		e.DeployedVersions[app] = model.DeployedVersion{ReleaseID: id, DeploymentID: "d-1"}
	}
	return e
}

func running(pairs ...string) []model.AgentApplication {
	var out []model.AgentApplication
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, model.AgentApplication{Name: pairs[i], RunningReleaseID: pairs[i+1], StagedReleaseIDs: []string{relV1, relV2}})
	}
	return out
}

func TestDrift(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		apps []model.AgentApplication
		want []string
	}{
		{"runs what is recorded", map[string]string{"hello": relV2}, running("hello", relV2), nil},
		{"nothing recorded", nil, running("hello", relV1), nil},
		{"runs another release", map[string]string{"hello": relV2}, running("hello", relV1),
			[]string{"hello: runs 111111111111, recorded 222222222222"}},
		{"runs nothing of a recorded app", map[string]string{"hello": relV2}, nil,
			[]string{"hello: runs nothing, recorded 222222222222"}},
		{"current broken (reported as no release)", map[string]string{"hello": relV2}, running("hello", ""),
			[]string{"hello: runs nothing, recorded 222222222222"}},
		{"an app not recorded is not compared", map[string]string{"hello": relV2}, running("hello", relV2, "web", relWeb), nil},
		{"two apps, one drifts", map[string]string{"hello": relV2, "web": relWeb}, running("web", relWeb, "hello", relV1),
			[]string{"hello: runs 111111111111, recorded 222222222222"}},
		{"two apps drift, sorted", map[string]string{"web": relWeb, "hello": relV2}, running("web", relV1, "hello", relV1),
			[]string{"hello: runs 111111111111, recorded 222222222222", "web: runs 111111111111, recorded 333333333333"}},
		{"staged is not running", map[string]string{"hello": relV2}, []model.AgentApplication{{Name: "hello", RunningReleaseID: relV1, StagedReleaseIDs: []string{relV2}}},
			[]string{"hello: runs 111111111111, recorded 222222222222"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Drift(recorded(tt.env), tt.apps); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Drift = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDriftsPausedDuringStage2AndRollback(t *testing.T) {
	envs := []*model.Environment{recorded(map[string]string{"hello": relV2}), {Name: "staging"}}
	views := []fleet.AgentView{
		{Agent: model.Agent{Name: "fe-1", Environment: "production", Applications: running("hello", relV2)}, Connected: true},
		{Agent: model.Agent{Name: "fe-2", Environment: "production", Applications: running("hello", relV1)}, Connected: true},
		{Agent: model.Agent{Name: "fe-3", Environment: "production", Applications: running("hello", relV1)}},
		{Agent: model.Agent{Name: "st-1", Environment: "staging", Applications: running("hello", relV1)}, Connected: true},
		{Agent: model.Agent{Name: "lost", Environment: "gone", Applications: running("hello", relV1)}},
	}
	dep := func(env string, st model.DeploymentState, rollingBack bool) *model.Deployment {
		return &model.Deployment{ID: "d-9", Environment: env, State: st, RollingBack: rollingBack}
	}
	tests := []struct {
		name string
		deps []*model.Deployment
		want []string
	}{
		{"no deployment", nil, []string{"fe-2", "fe-3"}},
		{"an earlier one DEPLOYED", []*model.Deployment{dep("production", model.Deployed, false)}, []string{"fe-2", "fe-3"}},
		{"one ROLLED_BACK by stage 2", []*model.Deployment{dep("production", model.RolledBack, true)}, []string{"fe-2", "fe-3"}},
		{"one PREPARED (nothing runs differently)", []*model.Deployment{dep("production", model.Prepared, false)}, []string{"fe-2", "fe-3"}},
		{"one ACTIVATING", []*model.Deployment{dep("production", model.Activating, false)}, nil},
		{"one rolling back by command", []*model.Deployment{dep("production", model.Deployed, true)}, nil},
		{"another environment's ACTIVATING", []*model.Deployment{dep("staging", model.Activating, false)}, []string{"fe-2", "fe-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := drifts(views, envs, tt.deps)
			if len(ds) != len(views) {
				t.Fatalf("drifts returned %d entries for %d agents", len(ds), len(views))
			}
			var got []string
			for _, d := range ds {
				if d.Drifted() {
					got = append(got, d.Agent)
					if !strings.HasPrefix(d.Reason(), "hello: runs 111111111111, recorded 222222222222") {
						t.Errorf("%s: reason %q", d.Agent, d.Reason())
					}
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("drifted = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckReconcile(t *testing.T) {
	tests := []struct {
		state       model.DeploymentState
		rollingBack bool
		refused     bool
	}{
		{model.Planned, false, false},
		{model.Preparing, false, true},
		{model.Prepared, false, true},
		{model.Activating, false, true},
		{model.Deployed, false, false},
		{model.Deployed, true, true},
		{model.Failed, false, false},
		{model.RolledBack, true, false},
	}
	for _, tt := range tests {
		err := checkReconcile("production", []*model.Deployment{{ID: "d-3", Environment: "production", State: tt.state, RollingBack: tt.rollingBack}})
		if got := errors.Is(err, errkind.FailedPrecondition); got != tt.refused {
			t.Errorf("%s (rolling back %v): refused = %v (%v), want %v", tt.state, tt.rollingBack, got, err, tt.refused)
		}
	}
}

func TestReconcileEnd(t *testing.T) {
	rec := &model.Deployment{ID: "d-4", Environment: "production", Reconcile: true}
	plain := &model.Deployment{ID: "d-5", Environment: "production"}
	armFailed := "stage 2 stopped at the readiness check (arm): agent fe-1: disk full; nothing was swapped" + againHint
	tests := []struct {
		name       string
		d          *model.Deployment
		to         model.DeploymentState
		wantTo     model.DeploymentState
		wantReason string
	}{
		{"a deployment goes back to PREPARED", plain, model.Prepared, model.Prepared, armFailed},
		{"a reconcile fails instead", rec, model.Prepared, model.Failed,
			"stage 2 stopped at the readiness check (arm): agent fe-1: disk full; nothing was swapped; the reconcile ended; fix the cause, then run `cutoverctl env reconcile production` again"},
		{"a reconcile DEPLOYED", rec, model.Deployed, model.Deployed, armFailed},
		{"a reconcile ROLLED_BACK", rec, model.RolledBack, model.RolledBack, armFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to, reason := reconcileEnd(tt.d, tt.to, armFailed)
			if to != tt.wantTo || reason != tt.wantReason {
				t.Errorf("reconcileEnd = %s, %q; want %s, %q", to, reason, tt.wantTo, tt.wantReason)
			}
		})
	}
}
