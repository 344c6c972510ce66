package fleet

import (
	"cmp"
	"slices"
	"time"
)

// peerIndexFor is how long a deployment's peer index is used before it
// is made again: agents that connected since are offered from then on,
// and one that left is skipped by the agents (a failed fetch) meanwhile.
const peerIndexFor = 5 * time.Second

// peerIndex is the agents of an environment that serve peers, as a
// deployment's commands offer them: those that hold the releases and the
// others, each sorted by name, whole and per zone. It is made in one pass
// over the connected agents, at most every peerIndexFor per deployment,
// so that each command's peers cost a look-up, not a pass over the fleet.
type peerIndex struct {
	env      string
	releases []ReleaseRef
	made     time.Time
	all      [2][]Peer             // [holders, others]
	byZone   map[string]*[2][]Peer // zone label → [holders, others]
}

// peerIndexOf returns the index of cmd's deployment for an agent of env,
// made now if there is none fresh. Call with f.mu held.
func (f *Fleet) peerIndexOf(env string, cmd Command) *peerIndex {
	now := f.clock()
	if x := f.peerIndexes[cmd.DeploymentID]; x != nil && x.env == env && slices.Equal(x.releases, cmd.Releases) && now.Sub(x.made) < peerIndexFor {
		return x
	}
	x := &peerIndex{env: env, releases: slices.Clone(cmd.Releases), made: now, byZone: map[string]*[2][]Peer{}}
	for _, o := range f.sessions {
		if o.agent.Environment != env || o.peerAddress == "" {
			continue
		}
		p := f.peerOf(o, cmd)
		k := 1
		if p.Holds {
			k = 0
		}
		x.all[k] = append(x.all[k], p)
		z := x.byZone[p.Zone]
		if z == nil {
			z = &[2][]Peer{}
			x.byZone[p.Zone] = z
		}
		z[k] = append(z[k], p)
	}
	byName := func(a, b Peer) int { return cmp.Compare(a.Name, b.Name) }
	for k := range x.all {
		slices.SortFunc(x.all[k], byName)
	}
	for _, z := range x.byZone {
		for k := range z {
			slices.SortFunc(z[k], byName)
		}
	}
	f.peerIndexes[cmd.DeploymentID] = x
	return x
}

// best returns at most n peers for agent self of zone: those that hold
// the releases first, then (unless holdersOnly) the others; within each,
// those of zone first (a zone "" prefers none), then by name.
func (x *peerIndex) best(self, zone string, n int, holdersOnly bool) []Peer {
	var out []Peer
	take := func(ps []Peer, skipZone bool) {
		for _, p := range ps {
			if len(out) == n {
				return
			}
			if p.Name != self && !(skipZone && p.Zone == zone) {
				out = append(out, p)
			}
		}
	}
	kinds := 2
	if holdersOnly {
		kinds = 1
	}
	for k := range kinds {
		if z := x.byZone[zone]; zone != "" && z != nil {
			take(z[k], false) // fewer than n of them in zone, or out is full: the skips below are few
			take(x.all[k], true)
		} else {
			take(x.all[k], false)
		}
	}
	return out
}
