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
	"time"

	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/controlplane/fleet"
	"github.com/cutover-dev/cutover/controlplane/leader"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/transfer"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Config holds what the server needs.
type Config struct {
	Store model.Store
	Fleet *fleet.Fleet
	// Transfer serves the chunks (batches of about 1 MiB, below gRPC's
	// 4 MiB default message limit) and counts the bytes.
	Transfer *transfer.Sender
	// Auth enrolls agents and renews their certificates.
	Auth *auth.Service
	Log  *slog.Logger
	// Epoch, if set, is the leader's epoch, sent with every command so
	// that agents refuse a former leader's (proto ConnectResponse.epoch);
	// nil: 0, a controller that is not elected.
	Epoch func() uint64
	// Leader, if set, says where the leader is and whether this
	// controller is it: a follower refuses sessions with the leader's
	// address (errkind.NotLeader), which the agent follows. Nil: this
	// controller always leads (one controller).
	Leader func() (addr string, self bool)
	// LeaderChanged, with Leader, returns a channel closed at the next
	// change of leader; nil: sessions are never held.
	LeaderChanged func() <-chan struct{}
	// HoldFor bounds how long a follower holds the session of an agent
	// that lost the controller the follower still takes for the leader
	// (its lease has not expired yet): about the leader's lease.
	HoldFor time.Duration
}

// Server implements cutoverv1.AgentServiceServer. Serve it with
// grpc.ForceServerCodecV2(chunkwire.Codec{}) so that chunks go out without
// a copy; with the stock codec FetchChunks fails.
type Server struct {
	cutoverv1.UnsafeAgentServiceServer
	store    model.Store
	fleet    *fleet.Fleet
	transfer *transfer.Sender
	auth     *auth.Service
	log      *slog.Logger
	epoch    func() uint64
	leader   func() (string, bool)
	changed  func() <-chan struct{}
	holdFor  time.Duration
}

var _ cutoverv1.AgentServiceServer = (*Server)(nil)

// New returns a server.
func New(cfg Config) *Server {
	epoch := cfg.Epoch
	if epoch == nil {
		epoch = func() uint64 { return 0 }
	}
	leader := cfg.Leader
	if leader == nil {
		leader = func() (string, bool) { return "", true }
	}
	return &Server{store: cfg.Store, fleet: cfg.Fleet, transfer: cfg.Transfer, auth: cfg.Auth, log: cfg.Log, epoch: epoch, leader: leader,
		changed: cfg.LeaderChanged, holdFor: cfg.HoldFor}
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
	if addr, self := leader.Await(stream.Context(), s.leader, s.changed, h.GetUnreachableController(), s.holdFor); !self {
		return &errkind.NotLeader{Leader: addr}
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
		cmd, err := s.fleet.Next(ctx, sess)
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
		msg := commandToProto(cmd, h.GetRevision())
		msg.Epoch = s.epoch()
		if err := stream.Send(msg); err != nil {
			return err
		}
		s.log.Debug("command sent", "agent", sess.Name(), "environment", sess.Environment(), "deployment", cmd.DeploymentID, "command", cmd.ID, "kind", cmd.Kind)
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
	err := s.store.View(func(tx model.Tx) error {
		var err error
		b, err = tx.Manifest(req.GetReleaseId())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cutoverv1.GetManifestResponse{Manifest: b}, nil
}

// chunkIDs converts the chunk ids of a request's field; InvalidArgument
// for one that is not 32 bytes.
func chunkIDs(field string, raw [][]byte) ([]manifest.ChunkID, error) {
	ids := make([]manifest.ChunkID, len(raw))
	for i, b := range raw {
		if len(b) != len(manifest.ChunkID{}) {
			return nil, fmt.Errorf("%s[%d] is %d bytes, want %d (SHA-256): %w", field, i, len(b), len(manifest.ChunkID{}), errkind.InvalidArgument)
		}
		copy(ids[i][:], b)
	}
	return ids, nil
}

// FetchChunks streams the requested chunks in order, in messages of about
// 1 MiB, encoded without copying the chunk data (chunkwire.Frame), after
// the stored copy of the suspect ones checked first (transfer.Sender.Send).
// INVALID_ARGUMENT for an id that is not 32 bytes, NOT_FOUND for an unknown
// chunk, DATA_LOSS for a suspect chunk found corrupt in the store.
func (s *Server) FetchChunks(req *cutoverv1.FetchChunksRequest, stream cutoverv1.AgentService_FetchChunksServer) error {
	ids, err := chunkIDs("ids", req.GetIds())
	if err != nil {
		return err
	}
	suspect, err := chunkIDs("suspect_ids", req.GetSuspectIds())
	if err != nil {
		return err
	}
	env := req.GetEnvironment()
	if appspec.ValidName(env) != nil {
		env = "" // an old or odd agent: counted without an environment
	}
	return s.transfer.Send(stream.Context(), env, ids, suspect, func(batch []transfer.Chunk) error {
		return stream.SendMsg(frameOf(batch))
	})
}
