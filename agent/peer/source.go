package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// DefaultStall is how long a peer may send nothing before its fetch is
// given up (and what it owes asked of the next peer or the controller).
const DefaultStall = 10 * time.Second

// Config configures a Source.
type Config struct {
	// Identity returns this agent's identity; nil until enrolled (peers
	// are then not asked).
	Identity func() Identity
	// Controller is the origin: asked for manifests, and for the chunks
	// no peer sent.
	Controller stage.Source
	Log        *slog.Logger
	Registerer prometheus.Registerer
	// Stall: DefaultStall when zero.
	Stall time.Duration
	// Window is the flow-control window of each fetch from a peer, in
	// bytes: what a peer may send ahead of what this agent has read
	// (default 8 MiB; the connection's is twice it). A simulator of many
	// agents in one process gives a small one.
	Window int32
}

// Source is the stage.Source of an agent that shares with its peers: the
// chunks of a release are asked of the peers the controller named for it
// (Use), in order, then what none of them sent of the controller.
type Source struct {
	cfg     Config
	metrics *metrics

	mu      sync.Mutex
	peers   map[string][]Peer          // release id → peers to ask
	swarms  map[string]*Swarm          // release id → this agent's part in its swarm
	deploys map[string]string          // release id → the deployment it is staged for
	dropped map[string]map[string]bool // deployment → names of peers dropped for it
	conns   map[string]*grpc.ClientConn
}

var _ stage.Source = (*Source)(nil)

// NewSource returns a Source; Close closes its connections to peers.
func NewSource(cfg Config) (*Source, error) {
	if cfg.Controller == nil || cfg.Identity == nil {
		return nil, errors.New("peer: Controller and Identity are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Stall <= 0 {
		cfg.Stall = DefaultStall
	}
	if cfg.Window <= 0 {
		cfg.Window = 8 << 20
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, metrics: m, peers: map[string][]Peer{}, swarms: map[string]*Swarm{}, deploys: map[string]string{},
		dropped: map[string]map[string]bool{}, conns: map[string]*grpc.ClientConn{}}, nil
}

// Server returns the server of this agent's chunks to its peers, reading
// them from held; it shares the Source's metrics.
func (s *Source) Server(held Held) *Server {
	return &Server{id: s.cfg.Identity, held: held, owns: s.owns, log: s.cfg.Log, metrics: s.metrics}
}

// Use says which peers to ask for the chunks of releases, best first, and
// this agent's part in their swarm (nil: none), while they are staged for
// deployment (a stage command's peers and swarm); it replaces what an
// earlier command said of them.
func (s *Source) Use(deployment string, releases []string, peers []Peer, swarm *Swarm) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range releases {
		s.peers[r], s.deploys[r] = slices.Clone(peers), deployment
		if swarm != nil {
			w := *swarm
			w.Owners = slices.Clone(swarm.Owners)
			s.swarms[r] = &w
		} else {
			delete(s.swarms, r)
		}
	}
}

// GetManifest asks the controller: the manifest is what every chunk is
// checked against, so it comes from the origin only.
func (s *Source) GetManifest(ctx context.Context, releaseID string) ([]byte, error) {
	return s.cfg.Controller.GetManifest(ctx, releaseID)
}

// FetchChunks, in a swarm, asks each slice of its owner, at once
// (swarm.go); without one, it asks the peers named for releaseID in order
// (those that hold the releases whole first) for the ids still missing,
// then the controller for the rest (with suspect). Every chunk from
// a peer is checked against its id before fn sees it: a peer that sends a
// bad one is dropped for the deployment and counted; a peer that fails or
// stalls is skipped. Only fn's error and the controller's end the fetch.
func (s *Source) FetchChunks(ctx context.Context, releaseID string, ids, suspect []manifest.ChunkID, fn func([]stage.Received, func()) error) error {
	if w, owners := s.swarmOf(releaseID); w != nil {
		return s.fromSwarm(ctx, w, owners, releaseID, ids, suspect, fn)
	}
	return s.fromPeers(ctx, releaseID, s.candidates(releaseID), ids, suspect, fn)
}

// fromPeers asks peers, one by one in order, for the ids still missing,
// then the controller for what none of them sent (with suspect). Only
// fn's error, the controller's and ctx's (once it ends nothing more is
// asked) end it.
func (s *Source) fromPeers(ctx context.Context, releaseID string, peers []Peer, ids, suspect []manifest.ChunkID, fn func([]stage.Received, func()) error) error {
	rest := ids
	for _, p := range peers {
		if len(rest) == 0 {
			return nil
		}
		var err error
		if rest, err = s.tryPeer(ctx, releaseID, p, rest, fn); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(rest) == 0 {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return s.cfg.Controller.FetchChunks(ctx, releaseID, rest, suspectAmong(suspect, rest), fn)
}

// candidates are the peers to ask for releaseID's chunks, without those
// dropped for its deployment.
func (s *Source) candidates(releaseID string) []Peer {
	if s.cfg.Identity() == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dropped := s.dropped[s.deploys[releaseID]]
	return slices.DeleteFunc(slices.Clone(s.peers[releaseID]), func(p Peer) bool { return dropped[p.Name] })
}

// drop keeps p from being asked again for the deployment of releaseID.
func (s *Source) drop(releaseID string, p Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deploys[releaseID]
	if s.dropped[d] == nil {
		s.dropped[d] = map[string]bool{}
	}
	s.dropped[d][p.Name] = true
}

// errCorrupt: the peer sent a chunk that does not hash to its id.
var errCorrupt = errors.New("a chunk does not match its id")

// callerError wraps the error of the caller's fn, which ends the fetch.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// fromPeer asks p for ids and hands fn the chunks that verify; it returns
// the ids it handed on, and errCorrupt after a bad chunk (the good ones of
// the same response are handed on first).
func (s *Source) fromPeer(ctx context.Context, releaseID string, p Peer, ids []manifest.ChunkID, fn func([]stage.Received, func()) error) (map[manifest.ChunkID]bool, error) {
	got := map[manifest.ChunkID]bool{}
	conn, err := s.conn(p)
	if err != nil {
		return got, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stall := time.AfterFunc(s.cfg.Stall, cancel)
	defer stall.Stop()
	self := s.cfg.Identity().Agent()
	req := &cutoverv1.FetchChunksRequest{Ids: make([][]byte, len(ids)), Environment: self.Environment, Agent: self.Name, ReleaseId: releaseID}
	for i := range ids {
		req.Ids[i] = ids[i][:]
	}
	stream, err := cutoverv1.NewPeerServiceClient(conn).FetchChunks(ctx, req, grpc.ForceCodecV2(chunkwire.Codec{}))
	if err != nil {
		return got, err
	}
	err = chunkwire.Receive(stream, func(resp *chunkwire.Decoded) error {
		// The stall timer runs only while this agent waits for the peer:
		// not while fn holds the batch (a slow disk, or the other slices
		// of a swarm handing theirs on), which is this agent's own pace.
		stall.Stop()
		defer stall.Reset(s.cfg.Stall)
		batch := make([]stage.Received, 0, len(resp.Chunks))
		var bad error
		var n int64
		for _, c := range resp.Chunks {
			// A peer sends chunks as they are on its disk: a compressed
			// one is as wrong as one that does not hash to its id.
			if c.Compressed || manifest.HashChunk(c.Data) != c.ID {
				s.metrics.corrupt.Inc()
				bad = fmt.Errorf("peer %s: chunk %s: %w", p.Name, c.ID, errCorrupt)
				break
			}
			batch = append(batch, stage.Received{ID: c.ID, Data: c.Data, WireBytes: int64(len(c.Data)), Verified: true})
			n += int64(len(c.Data))
		}
		if len(batch) == 0 {
			resp.Free()
			return bad
		}
		if err := fn(batch, resp.Free); err != nil {
			return &callerError{err: err}
		}
		s.metrics.received.Add(float64(n))
		for _, c := range batch {
			got[c.ID] = true
		}
		return bad
	})
	return got, err
}

// conn returns the connection to p, dialled (lazily) the first time.
func (s *Source) conn(p Peer) (*grpc.ClientConn, error) {
	key := p.Name + "@" + p.Address
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.conns[key]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(p.Address, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(s.cfg.Identity(), p))),
		grpc.WithInitialWindowSize(s.cfg.Window), grpc.WithInitialConnWindowSize(2*s.cfg.Window))
	if err != nil {
		return nil, fmt.Errorf("peer %s at %s: %w", p.Name, p.Address, err)
	}
	s.conns[key] = c
	return c, nil
}

// Close closes the connections to peers.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for k, c := range s.conns {
		errs = append(errs, c.Close())
		delete(s.conns, k)
	}
	return errors.Join(errs...)
}

// suspectAmong returns the ids of suspect that are in ids.
func suspectAmong(suspect, ids []manifest.ChunkID) []manifest.ChunkID {
	if len(suspect) == 0 {
		return nil
	}
	in := make(map[manifest.ChunkID]bool, len(ids))
	for _, id := range ids {
		in[id] = true
	}
	return slices.DeleteFunc(slices.Clone(suspect), func(id manifest.ChunkID) bool { return !in[id] })
}
