package deployment

import (
	"context"
	"reflect"
	"sync"

	"github.com/cutover-dev/cutover/controlplane/model"
)

// Change is what a watcher of a deployment receives: the deployment whole,
// or, when Partial, its header (every field but Agents) with, in Agents,
// only the agents that changed since the watcher's previous Change, each
// whole. The first Change of a watch is whole. Values are shared between
// watchers and must not be modified.
type Change struct {
	Deployment *model.Deployment
	Partial    bool
}

// Apply returns the deployment that c makes of d, the whole deployment as
// the previous Change left it: c's when c is whole, else c's header with
// d's agents, those of c in place of those of the same name and any new
// ones at the end. d is not modified. Applied to a partial Change's
// deployment it merges two partial Changes in one.
func (c Change) Apply(d *model.Deployment) *model.Deployment {
	if !c.Partial || d == nil {
		return c.Deployment
	}
	out := *c.Deployment
	out.Agents = make([]model.DeploymentAgent, len(d.Agents), len(d.Agents)+len(c.Deployment.Agents))
	copy(out.Agents, d.Agents)
	index := make(map[string]int, len(d.Agents))
	for i, a := range d.Agents {
		index[a.Name] = i
	}
	for _, a := range c.Deployment.Agents {
		if i, ok := index[a.Name]; ok {
			out.Agents[i] = a
			continue
		}
		index[a.Name] = len(out.Agents)
		out.Agents = append(out.Agents, a)
	}
	return &out
}

// ChangedAgents returns the agents of d that prev does not hold as they are
// in d (compared by name), in d's order: every agent when prev is nil.
func ChangedAgents(prev, d *model.Deployment) []model.DeploymentAgent {
	if prev == nil {
		return d.Agents
	}
	before := make(map[string]*model.DeploymentAgent, len(prev.Agents))
	for i := range prev.Agents {
		before[prev.Agents[i].Name] = &prev.Agents[i]
	}
	var out []model.DeploymentAgent
	for _, a := range d.Agents {
		if b, ok := before[a.Name]; !ok || !reflect.DeepEqual(*b, a) {
			out = append(out, a)
		}
	}
	return out
}

// watchers holds the channels of WatchDeployment callers, per deployment.
type watchers struct {
	mu   sync.Mutex
	subs map[string]map[chan Change]struct{}
}

// publish hands d, whole, to every watcher of it.
func (w *watchers) publish(d *model.Deployment) { w.publishChange(Change{Deployment: d}) }

// publishChange hands c to every watcher of its deployment. A watcher that
// has not taken the previous Change gets the two merged instead: watchers
// see the latest state, not necessarily every step.
func (w *watchers) publishChange(c Change) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[c.Deployment.ID] {
		offer(ch, c)
	}
}

// offer puts c in ch (capacity 1), merged with any Change not taken yet.
// Call with w.mu held, so that offers do not interleave.
func offer(ch chan Change, c Change) {
	select {
	case p := <-ch:
		c = Change{Deployment: c.Apply(p.Deployment), Partial: p.Partial && c.Partial}
	default:
	}
	ch <- c
}

// Watch returns a channel that receives deployment id as it is now, whole,
// then a Change after each change, until ctx ends. NotFound if unknown.
func (s *Service) Watch(ctx context.Context, id string) (<-chan Change, error) {
	ch := make(chan Change, 1)
	s.watchers.mu.Lock()
	if s.watchers.subs[id] == nil {
		s.watchers.subs[id] = map[chan Change]struct{}{}
	}
	s.watchers.subs[id][ch] = struct{}{}
	s.watchers.mu.Unlock()
	unsubscribe := func() {
		s.watchers.mu.Lock()
		delete(s.watchers.subs[id], ch)
		if len(s.watchers.subs[id]) == 0 {
			delete(s.watchers.subs, id)
		}
		s.watchers.mu.Unlock()
	}
	// Read after subscribing, so no change falls between the two. Under
	// s.mu, so that no publish of an older state can follow it.
	s.mu.Lock()
	d, err := s.Get(ctx, id)
	if err != nil {
		s.mu.Unlock()
		unsubscribe()
		return nil, err
	}
	s.watchers.mu.Lock()
	select { // a Change published before the read is in d already
	case <-ch:
	default:
	}
	ch <- Change{Deployment: d} // under s.mu: no older state can be published after it
	s.watchers.mu.Unlock()
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		unsubscribe()
	}()
	return ch, nil
}
