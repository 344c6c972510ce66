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
// (agents_partial); else every event holds every agent. It keeps its own
// copy of the deployment, to which a partial Change is applied in place,
// so that such an event costs what changed, not the fleet.
type watchStream struct {
	changedOnly bool
	// cur is the deployment as the last event showed it (nil before the
	// first); its Agents are the stream's own.
	cur *model.Deployment
	// index holds the position of each agent of cur by name, counts how
	// many agents of cur are in each state.
	index  map[string]int
	counts map[model.AgentState]int32
	// sent holds each agent as the stream last sent it (changedOnly only).
	sent map[string]*cutoverv1.DeploymentAgent
}

// event returns the event that shows c (without its time), and the
// deployment it shows, whole (the stream's: not to be modified); c is
// then taken as shown.
func (w *watchStream) event(c deployment.Change) (*cutoverv1.DeploymentEvent, *model.Deployment) {
	prev, header := w.cur, *c.Deployment
	var changed []model.DeploymentAgent
	if c.Partial && prev != nil {
		changed = c.Deployment.Agents // a partial Change holds the agents that changed
	} else {
		changed = deployment.ChangedAgents(prev, c.Deployment)
	}
	msg := describeChange(prev, &header, changed, w.agent) // before prev changes
	if c.Partial && prev != nil {
		w.update(&header, changed)
	} else {
		w.reset(c.Deployment)
	}
	ev := &cutoverv1.DeploymentEvent{Message: msg, AgentStates: agentStatesToProto(w.counts)}
	if !w.changedOnly || prev == nil {
		ev.Deployment = deploymentToProto(w.cur)
		if w.changedOnly {
			w.sent = make(map[string]*cutoverv1.DeploymentAgent, len(ev.Deployment.Agents))
			for _, a := range ev.Deployment.Agents {
				w.sent[a.Name] = a
			}
		}
		return ev, w.cur
	}
	header.Agents = nil
	ev.Deployment, ev.AgentsPartial = deploymentToProto(&header), true
	for _, a := range changed {
		pa := deploymentAgentToProto(a)
		if proto.Equal(w.sent[a.Name], pa) { // changed in what the API does not show
			continue
		}
		w.sent[a.Name] = pa
		ev.Deployment.Agents = append(ev.Deployment.Agents, pa)
	}
	return ev, w.cur
}

// agent returns the agent of the deployment as last shown, nil if unknown.
func (w *watchStream) agent(name string) *model.DeploymentAgent {
	if i, ok := w.index[name]; ok {
		return &w.cur.Agents[i]
	}
	return nil
}

// reset takes d, whole, as the deployment shown.
func (w *watchStream) reset(d *model.Deployment) {
	cur := *d
	cur.Agents = append([]model.DeploymentAgent(nil), d.Agents...)
	w.cur = &cur
	w.index = make(map[string]int, len(cur.Agents))
	w.counts = map[model.AgentState]int32{}
	for i, a := range cur.Agents {
		w.index[a.Name] = i
		w.counts[a.State]++
	}
}

// update takes header and the agents that changed as the deployment
// shown, in place.
func (w *watchStream) update(header *model.Deployment, changed []model.DeploymentAgent) {
	agents := w.cur.Agents
	*w.cur = *header
	for _, a := range changed {
		w.counts[a.State]++
		if i, ok := w.index[a.Name]; ok {
			w.counts[agents[i].State]--
			agents[i] = a
			continue
		}
		w.index[a.Name] = len(agents)
		agents = append(agents, a)
	}
	w.cur.Agents = agents
}
