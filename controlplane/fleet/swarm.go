package fleet

import (
	"hash/fnv"
	"slices"
)

// SwarmGroup bounds a swarm's group: each agent of a group fetches one
// slice of the releases' chunks first and serves it to the others of its
// group, and its command names them all.
const SwarmGroup = 16

// Swarm is one agent's part in the swarm of the agents that stage the
// same releases of a deployment at once (agent/peer explains how agents
// use it). Its members are the agents that serve peers and had the stage
// command when it went out to all of them (SendAll), sorted by name and
// cut into groups of at most SwarmGroup; each group splits the chunks
// into as many slices as its smallest group has members, member i of a
// group owning slice i. The owner of slice k in group j > 0 fetches it
// from the owner of slice k in group (j-1)/2 (its upstream); in group 0,
// from the controller: the controller sends each chunk about once, and
// the groups form a binary tree, so that the slowest agent is a few hops
// from the controller. An agent that is not a member (it serves no
// peers, or connected after the command went out) fetches every slice
// from the owners of a group and is waited for by nobody.
type Swarm struct {
	// Slices is how many slices the chunks are split into (≥ 1).
	Slices int
	// Slice is the agent's own slice; -1: none.
	Slice int
	// Owners[k] names the agent to ask for slice k; Owners[Slice] is the
	// agent's upstream ("": the controller).
	Owners []string
}

// swarmView is the membership of a deployment's swarm, fixed when the
// first of its stage commands is taken (after SendAll recorded them all)
// and kept until the deployment is forgotten, so that every member sees
// the same groups and owners; agents staged later are not members.
type swarmView struct {
	releases []ReleaseRef
	members  []string       // sorted
	index    map[string]int // name → position in members
}

// viewFor returns the swarm membership of the stage command cmd of env:
// the one its deployment has, or else one made now from the connected
// agents that serve peers and have such a command outstanding. Call with
// f.mu held.
func (f *Fleet) viewFor(env string, cmd Command) *swarmView {
	if v := f.swarms[cmd.DeploymentID]; v != nil && slices.Equal(v.releases, cmd.Releases) {
		return v
	}
	v := &swarmView{releases: slices.Clone(cmd.Releases), index: map[string]int{}}
	for name, o := range f.sessions {
		if o.agent.Environment != env || o.peerAddress == "" {
			continue
		}
		if slices.ContainsFunc(f.outstanding[name], func(c Command) bool {
			return c.Kind == Stage && c.DeploymentID == cmd.DeploymentID && slices.Equal(c.Releases, cmd.Releases)
		}) {
			v.members = append(v.members, name)
		}
	}
	slices.Sort(v.members)
	for i, n := range v.members {
		v.index[n] = i
	}
	f.swarms[cmd.DeploymentID] = v
	return v
}

// swarmFor returns the part of agent name in swarm v, and the members it
// must be able to reach (its group, and its upstream); nil when there is
// no swarm to speak of (fewer than two members). Call with f.mu held.
func swarmFor(v *swarmView, name string) (*Swarm, []string) {
	n := len(v.members)
	if n < 2 {
		return nil, nil
	}
	groups := (n + SwarmGroup - 1) / SwarmGroup
	slicesN := n / groups // the smallest group's size
	group := func(j int) []string { return v.members[j*n/groups : (j+1)*n/groups] }
	pos, member := v.index[name]
	var j, i int
	if member {
		for j = 0; (j+1)*n/groups <= pos; j++ {
		}
		i = pos - j*n/groups
	} else {
		h := fnv.New32a()
		_, _ = h.Write([]byte(name))
		j, i = int(h.Sum32()%uint32(groups)), -1
	}
	g := group(j)
	w := &Swarm{Slices: slicesN, Slice: -1, Owners: make([]string, slicesN)}
	if i >= 0 && i < slicesN {
		w.Slice = i
	}
	var reach []string
	for k := range slicesN {
		if k != w.Slice {
			w.Owners[k] = g[k]
			reach = append(reach, g[k])
		} else if j > 0 {
			w.Owners[k] = group((j - 1) / 2)[k]
			reach = append(reach, w.Owners[k])
		}
	}
	return w, reach
}
