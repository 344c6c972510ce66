package fleet

import (
	"cmp"
	"context"
	"slices"
)

// MaxPeers bounds the peers named in one stage command.
const MaxPeers = 8

// ZoneLabel is the agent label whose equal values make peers preferred.
const ZoneLabel = "zone"

// Peer is an agent that serves chunks to the others of its environment.
type Peer struct {
	Name    string
	Address string
	Zone    string
	// Holds: it reported every release of the command staged or running.
	Holds bool
}

// Next returns the next command of s, as Session.Next, with the peers a
// stage command's agent may fetch from (peersFor), looked up as it goes
// out, so that they are the ones connected now.
func (f *Fleet) Next(ctx context.Context, s *Session) (Command, error) {
	cmd, err := s.Next(ctx)
	if err == nil && cmd.Kind == Stage {
		cmd.Peers = f.peersFor(s, cmd.Releases)
	}
	return cmd, err
}

// peersFor returns the agents of s's environment, other than s's, that
// serve peers (their hello gave a peer address) and are connected: those
// that hold every release first, then those of s's zone, then by name; at
// most MaxPeers. The controller is the tracker at the grain of releases;
// each peer answers for its own chunks (agent/peer).
func (f *Fleet) peersFor(s *Session, releases []ReleaseRef) []Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	zone := s.agent.Labels[ZoneLabel]
	var out []Peer
	for name, o := range f.sessions {
		if name == s.agent.Name || o.agent.Environment != s.agent.Environment || o.peerAddress == "" {
			continue
		}
		v := AgentView{Agent: o.agent}
		holds := true
		for _, r := range releases {
			holds = holds && v.Holds(r.Application, r.ReleaseID)
		}
		out = append(out, Peer{Name: name, Address: o.peerAddress, Zone: o.agent.Labels[ZoneLabel], Holds: holds})
	}
	rank := func(p Peer) int {
		r := 0
		if !p.Holds {
			r += 2
		}
		if zone == "" || p.Zone != zone {
			r++
		}
		return r
	}
	slices.SortFunc(out, func(a, b Peer) int { return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.Name, b.Name)) })
	return out[:min(len(out), MaxPeers)]
}
