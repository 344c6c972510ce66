package deployment

import (
	"reflect"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
)

func TestPlanHooks(t *testing.T) {
	sched := map[string]string{"role": "scheduler"}
	agents := []agentLabels{{name: "fe3", labels: sched}, {name: "fe1"}, {name: "fe2", labels: sched}}
	ref := func(app, kind string, i int) model.HookRef {
		return model.HookRef{Application: app, Kind: kind, Index: i}
	}
	tests := []struct {
		name string
		apps []appHooks
		want map[string][]model.HookRef
	}{
		{name: "no hooks", want: map[string][]model.HookRef{}},
		{name: "each runs everywhere", apps: []appHooks{{app: "shop", hooks: appspec.Hooks{Validate: []appspec.Hook{{Command: "smoke"}}}}},
			want: map[string][]model.HookRef{"fe1": {ref("shop", "validate", 0)}, "fe2": {ref("shop", "validate", 0)}, "fe3": {ref("shop", "validate", 0)}}},
		{name: "once picks the first by name", apps: []appHooks{{app: "shop", hooks: appspec.Hooks{AfterActivate: []appspec.Hook{{Command: "warm", On: appspec.OnOnce}}}}},
			want: map[string][]model.HookRef{"fe1": {ref("shop", "after_activate", 0)}}},
		{name: "labels limit each", apps: []appHooks{{app: "shop", hooks: appspec.Hooks{BeforeActivate: []appspec.Hook{{Command: "suspend", Labels: sched}}}}},
			want: map[string][]model.HookRef{"fe2": {ref("shop", "before_activate", 0)}, "fe3": {ref("shop", "before_activate", 0)}}},
		{name: "labels and once", apps: []appHooks{{app: "shop", hooks: appspec.Hooks{
			BeforeActivate: []appspec.Hook{{Command: "suspend", On: appspec.OnOnce, Labels: sched}},
			AfterActivate:  []appspec.Hook{{Command: "resume", On: appspec.OnOnce, Labels: sched}}}}},
			want: map[string][]model.HookRef{"fe2": {ref("shop", "before_activate", 0), ref("shop", "after_activate", 0)}}},
		{name: "no agent matches", apps: []appHooks{{app: "shop", hooks: appspec.Hooks{Validate: []appspec.Hook{{Command: "x", Labels: map[string]string{"role": "db"}}}}}},
			want: map[string][]model.HookRef{}},
		{name: "run order: kinds, then apps, then index", apps: []appHooks{
			{app: "b", hooks: appspec.Hooks{AfterActivate: []appspec.Hook{{Command: "1", On: appspec.OnOnce}}, BeforeActivate: []appspec.Hook{{Command: "2", On: appspec.OnOnce}, {Command: "3", On: appspec.OnOnce}}}},
			{app: "a", hooks: appspec.Hooks{Validate: []appspec.Hook{{Command: "4", On: appspec.OnOnce}}, BeforeActivate: []appspec.Hook{{Command: "5", On: appspec.OnOnce}}}}},
			want: map[string][]model.HookRef{"fe1": {ref("b", "before_activate", 0), ref("b", "before_activate", 1), ref("a", "before_activate", 0), ref("a", "validate", 0), ref("b", "after_activate", 0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planHooks(tt.apps, agents); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("planHooks = %v\nwant        %v", got, tt.want)
			}
		})
	}
}

// TestCommandForCarriesKeepReleases checks that the commit command (and
// only it) carries the environment's keep_releases taken when stage 2 began.
func TestCommandForCarriesKeepReleases(t *testing.T) {
	for _, tt := range []struct {
		step model.Stage2Step
		want int32
	}{
		{model.StepArm, 0},
		{model.StepCommit, 5},
	} {
		d := &model.Deployment{ID: "d-1", Step: tt.step, KeepReleases: 5}
		a := &model.DeploymentAgent{Name: "fe1", Command: "d-1.x.fe1"}
		if got := commandFor(d, a).KeepReleases; got != tt.want {
			t.Errorf("step %s: KeepReleases = %d, want %d", tt.step, got, tt.want)
		}
	}
}
