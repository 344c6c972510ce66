package adminapi

import (
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/model"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestWatchStream: the events of a watch hold every agent, or, for a watch
// that asked for changed_agents_only, after the first, the agents whose
// public fields changed (from a whole Change or a partial one); each
// counts every agent per state.
func TestWatchStream(t *testing.T) {
	agents := func(as ...model.DeploymentAgent) *model.Deployment {
		return &model.Deployment{ID: "d-1", State: model.Preparing, Agents: as}
	}
	pending := func(n string) model.DeploymentAgent { return model.DeploymentAgent{Name: n, State: model.AgentPending} }
	staging := func(n string, b int64) model.DeploymentAgent {
		return model.DeploymentAgent{Name: n, State: model.AgentStaging, ReleaseBytes: 10, TransferredBytes: b}
	}
	hidden := pending("fe2")
	hidden.Command = "d-1.stage.fe2" // not shown by the API
	changes := []deployment.Change{
		{Deployment: agents(pending("fe1"), pending("fe2"), pending("fe3"))},
		{Deployment: agents(staging("fe1", 4), hidden, pending("fe3"))},            // whole: fe1 changed, fe2 in a hidden field
		{Deployment: agents(staging("fe3", 2)), Partial: true},                     // fe3 changed
		{Deployment: agents(staging("fe1", 4), staging("late", 1)), Partial: true}, // fe1 as it was; a new agent
	}
	const (
		p = cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_PENDING
		s = cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGING
	)
	type want struct {
		agents  []string
		partial bool
		states  []*cutoverv1.AgentStateCount
	}
	tests := []struct {
		changedOnly bool
		want        []want
	}{
		{false, []want{
			{[]string{"fe1", "fe2", "fe3"}, false, []*cutoverv1.AgentStateCount{{State: p, Count: 3}}},
			{[]string{"fe1", "fe2", "fe3"}, false, []*cutoverv1.AgentStateCount{{State: p, Count: 2}, {State: s, Count: 1}}},
			{[]string{"fe1", "fe2", "fe3"}, false, []*cutoverv1.AgentStateCount{{State: p, Count: 1}, {State: s, Count: 2}}},
			{[]string{"fe1", "fe2", "fe3", "late"}, false, []*cutoverv1.AgentStateCount{{State: p, Count: 1}, {State: s, Count: 3}}},
		}},
		{true, []want{
			{[]string{"fe1", "fe2", "fe3"}, false, []*cutoverv1.AgentStateCount{{State: p, Count: 3}}},
			{[]string{"fe1"}, true, []*cutoverv1.AgentStateCount{{State: p, Count: 2}, {State: s, Count: 1}}},
			{[]string{"fe3"}, true, []*cutoverv1.AgentStateCount{{State: p, Count: 1}, {State: s, Count: 2}}},
			{[]string{"late"}, true, []*cutoverv1.AgentStateCount{{State: p, Count: 1}, {State: s, Count: 3}}},
		}},
	}
	for _, tt := range tests {
		w := &watchStream{changedOnly: tt.changedOnly}
		for i, c := range changes {
			ev, _ := w.event(c)
			var names []string
			for _, a := range ev.GetDeployment().GetAgents() {
				names = append(names, a.GetName())
			}
			wt := tt.want[i]
			if !slices.Equal(names, wt.agents) || ev.GetAgentsPartial() != wt.partial || ev.GetDeployment().GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING {
				t.Errorf("changed_agents_only=%v, event %d: agents %q partial %v state %v; want %q partial %v", tt.changedOnly, i, names, ev.GetAgentsPartial(), ev.GetDeployment().GetState(), wt.agents, wt.partial)
			}
			got, want := &cutoverv1.DeploymentEvent{AgentStates: ev.GetAgentStates()}, &cutoverv1.DeploymentEvent{AgentStates: wt.states}
			if !proto.Equal(got, want) {
				t.Errorf("changed_agents_only=%v, event %d: agent states %v, want %v", tt.changedOnly, i, got.GetAgentStates(), wt.states)
			}
		}
	}
}

// BenchmarkWatchEvent1000Agents: the controller's cost of one watch event
// of a deployment of 1,000 agents after a flush in which one agent
// reported (a partial Change), encoded as it goes on the wire: every agent
// ("whole", as every event was before changed_agents_only) or the agents
// that changed ("changed"). bytes/op is the encoded event's size.
func BenchmarkWatchEvent1000Agents(b *testing.B) {
	d := &model.Deployment{ID: "d-1", Environment: "prod", State: model.Preparing}
	for i := range 1000 {
		d.Agents = append(d.Agents, model.DeploymentAgent{Name: fmt.Sprintf("fe-%04d", i), State: model.AgentStaging,
			ReleaseBytes: 1 << 30, TransferredBytes: 1 << 20, Command: "d-1.stage.x"})
	}
	for _, changedOnly := range []bool{false, true} {
		b.Run(map[bool]string{false: "whole", true: "changed"}[changedOnly], func(b *testing.B) {
			w := &watchStream{changedOnly: changedOnly}
			w.event(deployment.Change{Deployment: d})
			size := 0
			for i := range b.N {
				a := d.Agents[i%len(d.Agents)]
				a.TransferredBytes += int64(i + 1)
				h := *d
				h.Agents = []model.DeploymentAgent{a}
				ev, _ := w.event(deployment.Change{Deployment: &h, Partial: true})
				raw, err := proto.Marshal(ev)
				if err != nil {
					b.Fatal(err)
				}
				size = len(raw)
			}
			b.ReportMetric(float64(size), "bytes/event")
		})
	}
}
