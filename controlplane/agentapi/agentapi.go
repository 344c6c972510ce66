// Package agentapi serves AgentService: the agents' sessions (Connect),
// which it hands to the fleet, and the release data they pull (GetManifest,
// FetchChunks). Handlers only convert and delegate.
package agentapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// BatchBytes is about how many chunk bytes one FetchChunks message carries
// (below gRPC's 4 MiB default message limit).
const BatchBytes = 1 << 20

// Config holds what the server needs.
type Config struct {
	Store *store.Store
	Fleet *fleet.Fleet
	Log   *slog.Logger
}

// Server implements cutoverv1.AgentServiceServer.
type Server struct {
	cutoverv1.UnsafeAgentServiceServer
	store *store.Store
	fleet *fleet.Fleet
	log   *slog.Logger
}

var _ cutoverv1.AgentServiceServer = (*Server)(nil)

// New returns a server.
func New(cfg Config) *Server {
	return &Server{store: cfg.Store, fleet: cfg.Fleet, log: cfg.Log}
}

// Connect runs an agent's session: hello first, then commands out and
// status and reports in, until either side ends it.
func (s *Server) Connect(stream cutoverv1.AgentService_ConnectServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHello()
	if h == nil {
		return fmt.Errorf("the first message of a session must be a hello: %w", errkind.InvalidArgument)
	}
	sess, err := s.fleet.Connect(helloFromProto(h))
	if err != nil {
		return err
	}
	defer s.fleet.Disconnect(sess)

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	recvErr := make(chan error, 1)
	go func() {
		recvErr <- s.receive(ctx, stream, sess)
		cancel()
	}()
	for {
		cmd, err := sess.Next(ctx)
		if err != nil {
			select {
			case rerr := <-recvErr:
				if errors.Is(rerr, io.EOF) {
					return nil
				}
				return rerr
			default:
				return err
			}
		}
		if err := stream.Send(commandToProto(cmd)); err != nil {
			return err
		}
		s.log.Debug("command sent", "agent", sess.Name(), "deployment", cmd.DeploymentID, "command", cmd.ID, "kind", cmd.Kind)
	}
}

func (s *Server) receive(ctx context.Context, stream cutoverv1.AgentService_ConnectServer, sess *fleet.Session) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		switch m := msg.Msg.(type) {
		case *cutoverv1.ConnectRequest_Status:
			if err := s.fleet.Status(sess, applicationsFromProto(m.Status.GetApplications())); err != nil {
				return err
			}
		case *cutoverv1.ConnectRequest_Report:
			if err := s.fleet.Report(ctx, sess, reportFromProto(m.Report)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("agent %s: unexpected message %T after hello: %w", sess.Name(), msg.Msg, errkind.InvalidArgument)
		}
	}
}

// GetManifest returns a release's manifest bytes. NOT_FOUND if unknown.
func (s *Server) GetManifest(ctx context.Context, req *cutoverv1.GetManifestRequest) (*cutoverv1.GetManifestResponse, error) {
	var b []byte
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		b, err = tx.Manifest(req.GetReleaseId())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cutoverv1.GetManifestResponse{Manifest: b}, nil
}

// FetchChunks streams the requested chunks in order, in messages of about
// BatchBytes. INVALID_ARGUMENT for an id that is not 32 bytes, NOT_FOUND for
// an unknown chunk.
func (s *Server) FetchChunks(req *cutoverv1.FetchChunksRequest, stream cutoverv1.AgentService_FetchChunksServer) error {
	ids := make([]manifest.ChunkID, len(req.GetIds()))
	for i, raw := range req.GetIds() {
		if len(raw) != len(manifest.ChunkID{}) {
			return fmt.Errorf("chunk id %d is %d bytes, want %d (SHA-256): %w", i, len(raw), len(manifest.ChunkID{}), errkind.InvalidArgument)
		}
		copy(ids[i][:], raw)
	}
	for len(ids) > 0 {
		resp := &cutoverv1.FetchChunksResponse{}
		size := 0
		// One short read transaction per batch; none is held while sending.
		err := s.store.View(func(tx *store.Tx) error {
			for len(ids) > 0 && (size == 0 || size < BatchBytes) {
				data, err := tx.Chunk(ids[0])
				if err != nil {
					return err
				}
				if size > 0 && size+len(data) > BatchBytes {
					return nil
				}
				resp.Chunks = append(resp.Chunks, &cutoverv1.Chunk{Id: ids[0][:], Data: data})
				size += len(data)
				ids = ids[1:]
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}
