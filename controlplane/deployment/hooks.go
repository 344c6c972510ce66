package deployment

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// The hooks of a deployment (cutover.yaml `hooks`, read from the manifests
// of its releases) are planned once, when stage 2 begins: planHooks says
// which agent runs which hook, and the plan is kept with each agent of the
// deployment so that a resent command asks for the same hooks.

// appHooks is one application's hooks.
type appHooks struct {
	app   string
	hooks appspec.Hooks
}

// agentLabels is one agent's name and --label values.
type agentLabels struct {
	name   string
	labels map[string]string
}

// planHooks returns, per agent name, the hooks it runs, in run order
// (before_activate, validate, after_activate; within a kind, applications
// in deployment order, then each application's list order). A hook runs
// on every agent whose labels include the hook's labels (on: each), or
// only on the first of them by name (on: once). A hook that matches no
// agent runs nowhere. It is pure.
func planHooks(apps []appHooks, agents []agentLabels) map[string][]model.HookRef {
	sorted := slices.Clone(agents)
	slices.SortFunc(sorted, func(a, b agentLabels) int { return strings.Compare(a.name, b.name) })
	plan := map[string][]model.HookRef{}
	for _, kind := range appspec.HookKinds {
		for _, app := range apps {
			for i, h := range app.hooks.Of(kind) {
				for _, a := range sorted {
					if !h.Matches(a.labels) {
						continue
					}
					plan[a.name] = append(plan[a.name], model.HookRef{Application: app.app, Kind: string(kind), Index: i})
					if h.Once() {
						break
					}
				}
			}
		}
	}
	return plan
}

// refsOf returns the hooks of kind that a runs in stage 2, from its plan.
func refsOf(a *model.DeploymentAgent, kind appspec.HookKind) []model.HookRef {
	return refsIn(a.Plan, kind)
}

// refsIn returns the hooks of kind in plan.
func refsIn(plan []model.HookRef, kind appspec.HookKind) []model.HookRef {
	var out []model.HookRef
	for _, r := range plan {
		if r.Kind == string(kind) {
			out = append(out, r)
		}
	}
	return out
}

// deploymentHooks reads the hooks of d's releases from their manifests.
func deploymentHooks(tx model.Tx, d *model.Deployment) ([]appHooks, error) {
	return releaseHooks(tx, releases(d))
}

// releaseHooks reads the hooks of the releases refs from their manifests.
func releaseHooks(tx model.Tx, refs []fleet.ReleaseRef) ([]appHooks, error) {
	var out []appHooks
	for _, r := range refs {
		b, err := tx.Manifest(r.ReleaseID)
		if err != nil {
			return nil, fmt.Errorf("release %s of %s: %w", short(r.ReleaseID), r.Application, err)
		}
		m, err := manifest.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("release %s of %s: %w", short(r.ReleaseID), r.Application, err)
		}
		if !m.Spec.Hooks.Empty() {
			out = append(out, appHooks{app: r.Application, hooks: m.Spec.Hooks})
		}
	}
	return out, nil
}

// labelsOf returns the names and labels of the agents in views.
func labelsOf(views []fleet.AgentView) []agentLabels {
	out := make([]agentLabels, len(views))
	for i, v := range views {
		out[i] = agentLabels{name: v.Name, labels: v.Labels}
	}
	return out
}

// hookErrors joins the errors of the hooks in rs, or "".
func hookErrors(rs []model.HookResult) string {
	var out []string
	for _, r := range rs {
		if r.Error != "" {
			out = append(out, r.Error)
		}
	}
	return strings.Join(out, "; ")
}
