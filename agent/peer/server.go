package peer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"

	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	"github.com/cutover-dev/cutover/pkg/errkind"
	ident "github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Held is what the server serves from: the chunks this agent holds intact,
// committed or just written, and, as they are written, those it waits for
// (agent/stage.Stager.ServeHeld).
type Held interface {
	ServeHeld(ctx context.Context, ids []manifest.ChunkID, wait func(manifest.ChunkID) bool, fn func(id manifest.ChunkID, data []byte) error, idle func() error) error
}

// Server limits.
const (
	// batchBytes is about how much chunk data one response carries.
	batchBytes = 1 << 20
	// maxIDs bounds the ids of one request.
	maxIDs = 1 << 16
	// maxStreams bounds the fetches one agent serves at once.
	maxStreams = 16
	// stopTimeout bounds the graceful stop.
	stopTimeout = 5 * time.Second
	// maxWait bounds how long a fetch waits for chunks of this agent's
	// swarm slice while none is written.
	maxWait = time.Minute
)

// Server serves PeerService: the chunks this agent holds, to the agents of
// its environment.
type Server struct {
	cutoverv1.UnsafePeerServiceServer
	id      func() Identity
	held    Held
	owns    func(releaseID string, id manifest.ChunkID) bool // this agent's swarm slice
	log     *slog.Logger
	metrics *metrics
}

var _ cutoverv1.PeerServiceServer = (*Server)(nil)

// Serve serves PeerService on lis, over mutual TLS with this agent's
// certificate, until ctx ends; then it stops gracefully (hard after a few
// seconds). It returns nil when ctx ended, or the server's error.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS(s.id))), grpc.ForceServerCodecV2(chunkwire.Codec{}),
		grpc.MaxConcurrentStreams(maxStreams), grpc.MaxRecvMsgSize(4<<20))
	cutoverv1.RegisterPeerServiceServer(srv, s)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	s.log.Info("serving release chunks to peers on " + lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("peer server: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(stopTimeout):
		srv.Stop()
	}
	return nil
}

// FetchChunks sends those of the requested chunks this agent holds
// intact, in order, in batches of about 1 MiB; then those of the
// request's release in this agent's swarm slice as they are written (it
// waits for them: the caller's deadline or stall bounds the wait).
// PERMISSION_DENIED for a
// caller that is not an agent of this agent's environment,
// INVALID_ARGUMENT for a bad id or too many.
func (s *Server) FetchChunks(req *cutoverv1.FetchChunksRequest, stream cutoverv1.PeerService_FetchChunksServer) error {
	return rpcerr.ToStatus(s.log, s.fetchChunks(req, stream))
}

func (s *Server) fetchChunks(req *cutoverv1.FetchChunksRequest, stream cutoverv1.PeerService_FetchChunksServer) error {
	caller, err := s.allowed(stream.Context())
	if err != nil {
		s.metrics.refused.Inc()
		s.log.Warn("peer fetch refused", "error", err)
		return err
	}
	if len(req.GetIds()) > maxIDs {
		return fmt.Errorf("%d ids asked, at most %d at a time: %w", len(req.GetIds()), maxIDs, errkind.InvalidArgument)
	}
	ids := make([]manifest.ChunkID, len(req.GetIds()))
	for i, b := range req.GetIds() {
		if len(b) != len(manifest.ChunkID{}) {
			return fmt.Errorf("ids[%d] is %d bytes, want %d: %w", i, len(b), len(manifest.ChunkID{}), errkind.InvalidArgument)
		}
		ids[i] = manifest.ChunkID(b)
	}
	var batch []chunkwire.Chunk
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := stream.SendMsg(chunkwire.NewFrame(batch)); err != nil {
			return err
		}
		s.metrics.served.Add(float64(size))
		batch, size = nil, 0
		return nil
	}
	var wait func(manifest.ChunkID) bool
	if rel := req.GetReleaseId(); rel != "" && s.owns != nil {
		wait = func(id manifest.ChunkID) bool { return s.owns(rel, id) }
	}
	// While it waits for its own slice, the server sends what it batched,
	// or an empty response now and then: the caller knows it is alive (its
	// stall timer is reset) and does not turn to the controller while the
	// owner's own fetch, from a capped controller, is merely slow. It
	// gives up after maxWait without a chunk to send.
	lastChunk, lastSend := time.Now(), time.Now()
	idle := func() error {
		if len(batch) > 0 {
			lastSend = time.Now()
			return flush()
		}
		if time.Since(lastChunk) > maxWait {
			return fmt.Errorf("no chunk of this agent's slice was written for %s: %w", maxWait, errkind.Unavailable)
		}
		if time.Since(lastSend) < stage.IdleEvery/2 {
			return nil
		}
		lastSend = time.Now()
		return stream.SendMsg(chunkwire.NewFrame(nil))
	}
	ctx := stream.Context()
	err = s.held.ServeHeld(ctx, ids, wait, func(id manifest.ChunkID, data []byte) error {
		if size > 0 && size+len(data) > batchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		batch, size, lastChunk = append(batch, chunkwire.Chunk{ID: id, Data: data}), size+len(data), time.Now()
		return stream.Context().Err()
	}, idle)
	if err == nil {
		err = flush()
	}
	s.log.Debug("chunks served to a peer", "agent", caller.Name, "asked", len(ids), "error", err)
	return err
}

// allowed returns the caller's identity if it is an agent of this agent's
// environment (its chain was verified in the handshake).
func (s *Server) allowed(ctx context.Context) (ident.Agent, error) {
	self := s.id()
	if self == nil {
		return ident.Agent{}, fmt.Errorf("%w: %w", errNotEnrolled, errkind.Unavailable)
	}
	p, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return ident.Agent{}, fmt.Errorf("no peer information: %w", errkind.Unauthenticated)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return ident.Agent{}, fmt.Errorf("no client certificate: %w", errkind.Unauthenticated)
	}
	caller, err := ident.AgentFromCert(info.State.PeerCertificates[0])
	if err != nil {
		return ident.Agent{}, fmt.Errorf("%w: %w", err, errkind.Unauthenticated)
	}
	if env := self.Agent().Environment; caller.Environment != env {
		return caller, fmt.Errorf("agent %s is not of environment %q: peers serve only their own environment: %w", caller, env, errkind.PermissionDenied)
	}
	return caller, nil
}
