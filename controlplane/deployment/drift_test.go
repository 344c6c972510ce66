package deployment

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

const (
	relV1  = "1111111111111111aaaa"
	relV2  = "2222222222222222bbbb"
	relWeb = "3333333333333333cccc"
)

func recorded(apps map[string]string) *store.Environment {
	e := &store.Environment{Name: "production", DeployedVersions: map[string]store.DeployedVersion{}}
	for app, id := range apps {
		e.DeployedVersions[app] = store.DeployedVersion{ReleaseID: id, DeploymentID: "d-1"}
	}
	return e
}

func running(pairs ...string) []store.AgentApplication {
	var out []store.AgentApplication
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, store.AgentApplication{Name: pairs[i], RunningReleaseID: pairs[i+1], StagedReleaseIDs: []string{relV1, relV2}})
	}
	return out
}

func TestDrift(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		apps []store.AgentApplication
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
		{"staged is not running", map[string]string{"hello": relV2}, []store.AgentApplication{{Name: "hello", RunningReleaseID: relV1, StagedReleaseIDs: []string{relV2}}},
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
	envs := []*store.Environment{recorded(map[string]string{"hello": relV2}), {Name: "staging"}}
	views := []fleet.AgentView{
		{Agent: store.Agent{Name: "fe-1", Environment: "production", Applications: running("hello", relV2)}, Connected: true},
		{Agent: store.Agent{Name: "fe-2", Environment: "production", Applications: running("hello", relV1)}, Connected: true},
		{Agent: store.Agent{Name: "fe-3", Environment: "production", Applications: running("hello", relV1)}},
		{Agent: store.Agent{Name: "st-1", Environment: "staging", Applications: running("hello", relV1)}, Connected: true},
		{Agent: store.Agent{Name: "lost", Environment: "gone", Applications: running("hello", relV1)}},
	}
	dep := func(env string, st store.DeploymentState, rollingBack bool) *store.Deployment {
		return &store.Deployment{ID: "d-9", Environment: env, State: st, RollingBack: rollingBack}
	}
	tests := []struct {
		name string
		deps []*store.Deployment
		want []string
	}{
		{"no deployment", nil, []string{"fe-2", "fe-3"}},
		{"an earlier one DEPLOYED", []*store.Deployment{dep("production", store.Deployed, false)}, []string{"fe-2", "fe-3"}},
		{"one ROLLED_BACK by stage 2", []*store.Deployment{dep("production", store.RolledBack, true)}, []string{"fe-2", "fe-3"}},
		{"one PREPARED (nothing runs differently)", []*store.Deployment{dep("production", store.Prepared, false)}, []string{"fe-2", "fe-3"}},
		{"one ACTIVATING", []*store.Deployment{dep("production", store.Activating, false)}, nil},
		{"one rolling back by command", []*store.Deployment{dep("production", store.Deployed, true)}, nil},
		{"another environment's ACTIVATING", []*store.Deployment{dep("staging", store.Activating, false)}, []string{"fe-2", "fe-3"}},
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
		state       store.DeploymentState
		rollingBack bool
		refused     bool
	}{
		{store.Planned, false, false},
		{store.Preparing, false, true},
		{store.Prepared, false, true},
		{store.Activating, false, true},
		{store.Deployed, false, false},
		{store.Deployed, true, true},
		{store.Failed, false, false},
		{store.RolledBack, true, false},
	}
	for _, tt := range tests {
		err := checkReconcile("production", []*store.Deployment{{ID: "d-3", Environment: "production", State: tt.state, RollingBack: tt.rollingBack}})
		if got := errors.Is(err, errkind.FailedPrecondition); got != tt.refused {
			t.Errorf("%s (rolling back %v): refused = %v (%v), want %v", tt.state, tt.rollingBack, got, err, tt.refused)
		}
	}
}

func TestReconcileEnd(t *testing.T) {
	rec := &store.Deployment{ID: "d-4", Environment: "production", Reconcile: true}
	plain := &store.Deployment{ID: "d-5", Environment: "production"}
	armFailed := "stage 2 stopped at the readiness check (arm): agent fe-1: disk full; nothing was swapped" + againHint
	tests := []struct {
		name       string
		d          *store.Deployment
		to         store.DeploymentState
		wantTo     store.DeploymentState
		wantReason string
	}{
		{"a deployment goes back to PREPARED", plain, store.Prepared, store.Prepared, armFailed},
		{"a reconcile fails instead", rec, store.Prepared, store.Failed,
			"stage 2 stopped at the readiness check (arm): agent fe-1: disk full; nothing was swapped; the reconcile ended; fix the cause, then run `cutoverctl env reconcile production` again"},
		{"a reconcile DEPLOYED", rec, store.Deployed, store.Deployed, armFailed},
		{"a reconcile ROLLED_BACK", rec, store.RolledBack, store.RolledBack, armFailed},
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
