package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/controlplane/audit"
	"github.com/cutover-dev/cutover/controlplane/forward"
	"github.com/cutover-dev/cutover/controlplane/guard"
	"github.com/cutover-dev/cutover/pkg/auditlog"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// writeBuffer is the size of the gRPC server's write buffer, taken from a
// pool for each burst of writes on a connection and returned after it.
// It was 256 KiB; at 10,000 agents the pool held 862 MB of them (3,370
// buffers, in the heap profile after a GC with every agent connected),
// since every connection's writer holds one through a keepalive ping or a
// command, and on a busy machine across a yield to the scheduler. 64 KiB
// holds a quarter of that, and four TLS records per write syscall kept the
// transfer's goodput (BenchmarkTLSCost, below).
const writeBuffer = 64 << 10

// Keepalive (issue 14): an agent that stops answering (SIGSTOP, a hung
// host, a cut without a reset) must be seen within seconds, not after the
// kernel's TCP timeouts (minutes to hours), since a stage 2 waits for its
// answers. The server pings a connection from which it has read nothing
// for keepaliveTime and closes it when the ack has not come
// keepaliveTimeout later: an agent that stopped is disconnected within
// about 10 s (its session ends, it shows disconnected, and what waited for
// it can move on). A connection that carries data is not pinged (the
// agent's window updates count as reads during a transfer), so a busy slow
// link is not taken for a dead one; an idle one costs a ping frame every
// 5 s. Agents ping the controller every 10 s (agent/session.Dial: grpc-go's
// least client interval); keepaliveMinTime permits that with a margin (a
// client that pings more often is told to go away, too_many_pings), also
// without an open stream (an agent between sessions).
const (
	keepaliveTime    = 5 * time.Second
	keepaliveTimeout = 5 * time.Second
	keepaliveMinTime = 5 * time.Second
)

// newGRPCServer is the one place that builds the gRPC server: TLS only
// (creds), keepalive (an agent that stops answering is cut within ~10 s),
// interceptors (recover, logging, metrics, error kinds → codes, streams
// that end with the controller, then the guard: authentication,
// authorization, audit), health (SERVING), reflection and both services. Its codec is
// chunkwire.Codec: the proto codec for every message, except that chunk
// batches go out without being copied.
func newGRPCServer(log *slog.Logger, stopping context.Context, creds credentials.TransportCredentials, g *guard.Guard, m *rpcMetrics,
	fwd *forward.Forwarder, admin cutoverv1.AdminServiceServer, agents cutoverv1.AgentServiceServer) (*grpc.Server, *health.Server) {
	// A follower forwards operators' calls before its guard sees them: the
	// leader authenticates, authorizes and audits them once.
	unary := []grpc.UnaryServerInterceptor{recoverUnary(log), logUnary(log), m.unary(), rpcerr.UnaryServerInterceptor(log)}
	stream := []grpc.StreamServerInterceptor{recoverStream(log), logStream(log), m.stream(), endWith(stopping), rpcerr.StreamServerInterceptor(log)}
	if fwd != nil {
		unary, stream = append(unary, fwd.Unary()), append(stream, fwd.Stream())
	}
	unary, stream = append(unary, g.Unary()), append(stream, g.Stream())
	srv := grpc.NewServer(
		grpc.Creds(creds),
		grpc.MaxRecvMsgSize(4<<20), // the largest request (gRPC's default, named in docs/limits.md); more is RESOURCE_EXHAUSTED
		grpc.ForceServerCodecV2(chunkwire.Codec{}),
		// Chunk batches go out in writes of up to writeBuffer bytes instead
		// of gRPC's default 32 KiB (a syscall each); the buffer is taken
		// from a pool while writing, not held per idle connection.
		grpc.WriteBufferSize(writeBuffer), grpc.SharedWriteBuffer(true),
		// No read buffer of gRPC's own (32 KiB per connection, held while
		// it lives: a third of an idle agent's cost, issue 15's F1): the
		// framer reads from the TLS connection, which buffers a decrypted
		// record already, and what agents send the controller is small.
		grpc.ReadBufferSize(0),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	)
	cutoverv1.RegisterAdminServiceServer(srv, admin)
	cutoverv1.RegisterAgentServiceServer(srv, agents)
	hs := health.NewServer()
	for _, name := range []string{"", cutoverv1.AdminService_ServiceDesc.ServiceName, cutoverv1.AgentService_ServiceDesc.ServiceName} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv, hs
}

func panicError(log *slog.Logger, method string, p any) error {
	log.Error("panic in handler", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error; the controller's log has the details")
}

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				resp, err = nil, panicError(log, info.FullMethod, p)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = panicError(log, info.FullMethod, p)
			}
		}()
		return handler(srv, ss)
	}
}

func logCall(log *slog.Logger, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelDebug
	if code != codes.OK {
		level = slog.LevelInfo
	}
	log.Log(context.Background(), level, "rpc", "method", method, "code", code.String(), "duration", time.Since(start), "err", err)
}

func logUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logCall(log, info.FullMethod, start, err)
		return resp, err
	}
}

func logStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		logCall(log, info.FullMethod, start, err)
		return err
	}
}

// endWith gives streams a context that also ends when stopping does, so
// that long-lived streams (agent sessions, watches) end when the controller
// stops instead of holding up the graceful stop.
func endWith(stopping context.Context) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		stop := context.AfterFunc(stopping, cancel)
		defer stop()
		return handler(srv, &stream{ServerStream: ss, ctx: ctx})
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

// auditTo writes what the guard records into the audit log, with the
// result as the gRPC code's proto name ("PERMISSION_DENIED").
func auditTo(l *audit.Log) func(context.Context, guard.Record) error {
	return func(ctx context.Context, r guard.Record) error {
		_, err := l.Append(ctx, auditlog.Entry{Subject: r.Subject.Name, Roles: r.Subject.Roles(), Method: r.Method,
			Environment: r.Environment, Deployment: r.Deployment, Summary: r.Summary,
			Code: code.Code(r.Code).String(), Reason: r.Reason})
		return err
	}
}
