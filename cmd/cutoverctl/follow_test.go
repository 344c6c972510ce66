package main

import (
	"testing"

	"google.golang.org/protobuf/proto"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func TestMergeEvent(t *testing.T) {
	agent := func(name string, st cutoverv1.AgentDeploymentState, n int64) *cutoverv1.DeploymentAgent {
		return &cutoverv1.DeploymentAgent{Name: name, State: st, TransferredBytes: n}
	}
	const (
		pending = cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_PENDING
		staging = cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGING
	)
	preparing, prepared := cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED
	whole := &cutoverv1.Deployment{Id: "d-1", State: preparing, Agents: []*cutoverv1.DeploymentAgent{agent("a", pending, 0), agent("b", pending, 0)}}
	tests := []struct {
		name  string
		whole *cutoverv1.Deployment
		ev    *cutoverv1.DeploymentEvent
		want  *cutoverv1.DeploymentEvent
	}{
		{"a whole event", whole, &cutoverv1.DeploymentEvent{Deployment: &cutoverv1.Deployment{Id: "d-1", State: prepared}, Message: "m"},
			&cutoverv1.DeploymentEvent{Deployment: &cutoverv1.Deployment{Id: "d-1", State: prepared}, Message: "m"}},
		{"a changed agent", whole, &cutoverv1.DeploymentEvent{AgentsPartial: true, Message: "m",
			Deployment: &cutoverv1.Deployment{Id: "d-1", State: prepared, Agents: []*cutoverv1.DeploymentAgent{agent("b", staging, 7)}}},
			&cutoverv1.DeploymentEvent{Message: "m", Deployment: &cutoverv1.Deployment{Id: "d-1", State: prepared,
				Agents: []*cutoverv1.DeploymentAgent{agent("a", pending, 0), agent("b", staging, 7)}}}},
		{"a new agent", whole, &cutoverv1.DeploymentEvent{AgentsPartial: true,
			Deployment: &cutoverv1.Deployment{Id: "d-1", State: preparing, Agents: []*cutoverv1.DeploymentAgent{agent("late", staging, 1)}}},
			&cutoverv1.DeploymentEvent{Deployment: &cutoverv1.Deployment{Id: "d-1", State: preparing,
				Agents: []*cutoverv1.DeploymentAgent{agent("a", pending, 0), agent("b", pending, 0), agent("late", staging, 1)}}}},
	}
	for _, tt := range tests {
		before, evBefore := proto.CloneOf(tt.whole), proto.CloneOf(tt.ev)
		if got := mergeEvent(tt.whole, tt.ev); !proto.Equal(got, tt.want) {
			t.Errorf("%s: got %v\nwant %v", tt.name, got, tt.want)
		}
		if !proto.Equal(tt.whole, before) || !proto.Equal(tt.ev, evBefore) {
			t.Errorf("%s: mergeEvent modified what it was given", tt.name)
		}
	}
}
