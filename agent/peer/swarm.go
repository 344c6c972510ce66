package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// A swarm is the agents that stage the same releases at the same time.
// The controller splits the chunks into slices (by id: SliceOf) and gives
// each agent one slice to fetch first, from its upstream (the agent of
// the group before that fetches the same slice) or the controller; each
// agent asks each other slice of its owner, all at once. An owner serves
// the chunks of its slice as it writes them and waits for those it has
// not written yet (Server, ServeHeld), so that the controller sends each
// chunk about once per swarm while every agent fetches the whole release
// at the same time. Nobody waits for a chunk outside the slice it owns,
// and an owner fetches its slice from its upstream or the controller
// only: who waits for whom is a tree that ends at the controller, never
// a cycle.

// Swarm is an agent's part in a swarm (a stage command's).
type Swarm struct {
	// Slices is how many slices the chunks are split into (≥ 1).
	Slices int
	// Slice is the slice this agent fetches first and serves as it
	// writes it; -1: none.
	Slice int
	// Owners[k] names the peer to ask for slice k ("": the controller);
	// Owners[Slice] is this agent's upstream.
	Owners []string
}

// SliceOf returns the slice of chunk id among n: its first 8 bytes,
// big-endian, modulo n.
func SliceOf(id manifest.ChunkID, n int) int {
	if n <= 1 {
		return 0
	}
	return int(binary.BigEndian.Uint64(id[:8]) % uint64(n))
}

// owns says whether this agent fetches chunk id of releaseID first in its
// swarm: what its server waits for when a peer asks before it has it.
func (s *Source) owns(releaseID string, id manifest.ChunkID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.swarms[releaseID]
	return w != nil && w.Slice >= 0 && SliceOf(id, w.Slices) == w.Slice
}

// swarmOf returns the swarm of releaseID (nil: none), with the peers that
// its owners name, those dropped for the deployment left out.
func (s *Source) swarmOf(releaseID string) (*Swarm, map[string]Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.swarms[releaseID]
	if w == nil || w.Slices <= 0 {
		return nil, nil
	}
	dropped := s.dropped[s.deploys[releaseID]]
	byName := map[string]Peer{}
	for _, p := range s.peers[releaseID] {
		if !dropped[p.Name] {
			byName[p.Name] = p
		}
	}
	return w, byName
}

// fromSwarm fetches ids in swarm w: it asks, at once, each slice's owner
// for the ids of its slice; its own slice of its upstream, then of the
// peers that hold the releases whole (each holder serving a slice to one
// owner per group, rather than the whole release to every agent); and
// the controller for what none sent as soon as it knows, not after the
// other slices: the agents that wait for this agent's own slice must not
// stall. fn is called by one goroutine at a time.
func (s *Source) fromSwarm(ctx context.Context, w *Swarm, peers map[string]Peer, releaseID string, ids, suspect []manifest.ChunkID, fn func([]stage.Received, func()) error) error {
	var holders []Peer
	for _, p := range s.candidates(releaseID) {
		if p.Holds {
			holders = append(holders, p)
		}
	}
	bySlice := make(map[int][]manifest.ChunkID)
	for _, id := range ids {
		k := SliceOf(id, w.Slices)
		bySlice[k] = append(bySlice[k], id)
	}
	var fnMu sync.Mutex
	serial := func(b []stage.Received, release func()) error {
		fnMu.Lock()
		defer fnMu.Unlock()
		return fn(b, release)
	}
	g, gctx := errgroup.WithContext(ctx)
	for k, part := range bySlice {
		owner := ""
		if k < len(w.Owners) {
			owner = w.Owners[k]
		}
		// The owner, then (this agent's own slice) the holders, one by
		// one; the controller, the origin, for what none of them sent (no
		// owner or no upstream, or they failed).
		var ask []Peer
		if p, named := peers[owner]; named {
			ask = append(ask, p)
		}
		if k == w.Slice {
			ask = append(ask, holders...)
		}
		g.Go(func() error { return s.fromPeers(gctx, releaseID, ask, part, suspect, serial) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// tryPeer asks p for ids and returns those it did not send. A peer that
// sends a bad chunk is dropped for the deployment; one that fails is
// counted and skipped. Only fn's error is returned.
func (s *Source) tryPeer(ctx context.Context, releaseID string, p Peer, ids []manifest.ChunkID, fn func([]stage.Received, func()) error) ([]manifest.ChunkID, error) {
	got, err := s.fromPeer(ctx, releaseID, p, ids, fn)
	var fnErr *callerError
	switch {
	case errors.As(err, &fnErr):
		return nil, fnErr.err
	case errors.Is(err, errCorrupt):
		s.drop(releaseID, p)
		s.cfg.Log.Warn("peer dropped for this deployment: it sent a chunk that does not match its id", "peer", p.Name, "address", p.Address, "release", releaseID)
	case err != nil && ctx.Err() == nil:
		s.metrics.failures.Inc()
		s.cfg.Log.Info("peer fetch failed; asking the next peer or the controller", "peer", p.Name, "address", p.Address, "error", err)
	}
	var left []manifest.ChunkID
	for _, id := range ids {
		if !got[id] {
			left = append(left, id)
		}
	}
	return left, nil
}
