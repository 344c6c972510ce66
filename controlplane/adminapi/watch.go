package adminapi

import (
	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/controlplane/deployment"
	"github.com/cutover-dev/cutover/controlplane/model"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// watchStream turns the Changes of one WatchDeployment stream into its
// events. With changedOnly, each event after the first holds only the
// agents whose public fields changed since the previous event
// (agents_partial); else every event holds every agent.
type watchStream struct {
	changedOnly bool
	// prev is the deployment as the last event showed it (nil before the first).
	prev *model.Deployment
	// sent holds each agent as the stream last sent it (changedOnly only).
	sent map[string]*cutoverv1.DeploymentAgent
}

// event returns the event that shows c (without its time), and the
// deployment it shows, whole; c is then taken as shown.
func (w *watchStream) event(c deployment.Change) (*cutoverv1.DeploymentEvent, *model.Deployment) {
	d := c.Apply(w.prev)
	changed := c.Deployment.Agents // a partial Change holds the agents that changed
	if !c.Partial {
		changed = deployment.ChangedAgents(w.prev, d)
	}
	ev := &cutoverv1.DeploymentEvent{Message: describeChange(w.prev, d, changed), AgentStates: agentStatesToProto(d.Agents)}
	first := w.prev == nil
	w.prev = d
	if !w.changedOnly || first {
		ev.Deployment = deploymentToProto(d)
		if w.changedOnly {
			w.sent = make(map[string]*cutoverv1.DeploymentAgent, len(ev.Deployment.Agents))
			for _, a := range ev.Deployment.Agents {
				w.sent[a.Name] = a
			}
		}
		return ev, d
	}
	h := *d
	h.Agents = nil
	ev.Deployment, ev.AgentsPartial = deploymentToProto(&h), true
	for _, a := range changed {
		pa := deploymentAgentToProto(a)
		if proto.Equal(w.sent[a.Name], pa) { // changed in what the API does not show
			continue
		}
		w.sent[a.Name] = pa
		ev.Deployment.Agents = append(ev.Deployment.Agents, pa)
	}
	return ev, d
}
