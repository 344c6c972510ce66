package fleet

import (
	"context"
	"slices"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
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
// stage or arm command's agent may fetch from and its part in the swarm
// (peersFor), looked up as it goes out, so that they are the ones
// connected now; none when the environment turned peers off.
func (f *Fleet) Next(ctx context.Context, s *Session) (Command, error) {
	cmd, err := s.Next(ctx)
	if err == nil && (cmd.Kind == Stage || cmd.Kind == Arm) && f.peersAllowed(s.Environment()) {
		cmd.Peers, cmd.Swarm = f.peersFor(s, cmd)
	}
	return cmd, err
}

// peersSettingFor is how long peersAllowed keeps an environment's
// setting: a fan-out to thousands of agents reads it once, not once per
// command (a read from etcd, in HA), and a change applies within it.
const peersSettingFor = 2 * time.Second

// peersSetting is an environment's peers_disabled as read at a time.
type peersSetting struct {
	off  bool
	read time.Time
}

// peersAllowed says whether env shares between peers (its peers_disabled
// is off), as read in the store within peersSettingFor; an environment
// that cannot be read shares nothing.
func (f *Fleet) peersAllowed(env string) bool {
	now := f.clock()
	f.mu.Lock()
	got, ok := f.peersSettings[env]
	f.mu.Unlock()
	if ok && now.Sub(got.read) < peersSettingFor {
		return !got.off
	}
	var off bool
	err := f.store.View(func(tx model.Tx) error {
		e, err := tx.Environment(env)
		if err == nil {
			off = e.PeersDisabled
		}
		return err
	})
	if err != nil {
		f.log.Warn("command sent without peers: the environment could not be read", "environment", env, "error", err)
		return false
	}
	f.mu.Lock()
	f.peersSettings[env] = peersSetting{off: off, read: now}
	f.mu.Unlock()
	return !off
}

// peersFor returns the agents of s's environment, other than s's, that
// serve peers (their hello gave a peer address) and are connected: those
// that hold every release of cmd first, then those of s's zone, then by
// name; at most MaxPeers. When the agents that stage cmd's releases form
// a swarm (swarm.go), it returns s's part in it, and the peers are those
// that hold the releases (at most MaxPeers) then those the swarm names.
// The controller is the tracker at the grain of releases and slices; each
// peer answers for its own chunks (agent/peer). It looks the peers up in
// the deployment's index (peerindex.go) rather than going over the fleet.
func (f *Fleet) peersFor(s *Session, cmd Command) ([]Peer, *Swarm) {
	f.mu.Lock()
	defer f.mu.Unlock()
	env, zone := s.agent.Environment, s.agent.Labels[ZoneLabel]
	x := f.peerIndexOf(env, cmd)
	if cmd.Kind != Stage { // arm stages what an agent lacks once the others hold it: no swarm
		return x.best(s.agent.Name, zone, MaxPeers, false), nil
	}
	w, reach := swarmFor(f.viewFor(env, cmd), s.agent.Name)
	if w == nil {
		return x.best(s.agent.Name, zone, MaxPeers, false), nil
	}
	peers := x.best(s.agent.Name, zone, MaxPeers, true)
	for _, name := range reach {
		if o := f.sessions[name]; o != nil && name != s.agent.Name && o.peerAddress != "" &&
			!slices.ContainsFunc(peers, func(p Peer) bool { return p.Name == name }) {
			peers = append(peers, f.peerOf(o, cmd))
		}
	}
	return peers, w
}

// peerOf describes o's agent as a peer for cmd. Call with f.mu held.
func (f *Fleet) peerOf(o *Session, cmd Command) Peer {
	v := AgentView{Agent: o.agent}
	holds := true
	for _, r := range cmd.Releases {
		holds = holds && v.Holds(r.Application, r.ReleaseID)
	}
	return Peer{Name: o.agent.Name, Address: o.peerAddress, Zone: o.agent.Labels[ZoneLabel], Holds: holds}
}
