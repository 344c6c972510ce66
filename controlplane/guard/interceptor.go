package guard

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

func unknownMethod(method string) error {
	return fmt.Errorf("method %s is not served: %w", method, errkind.PermissionDenied)
}

// claimed is the subject an enrollment request claims to be, for its
// audit entry: the token in it is what the controller checks.
func claimed(m proto.Message) auth.Subject {
	if r, ok := m.(*cutoverv1.EnrollRequest); ok {
		return auth.AgentSubject(identity.Agent{Environment: r.GetEnvironment(), Name: r.GetName()})
	}
	return anonymous
}

// Unary returns the unary server interceptor.
func (g *Guard) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		method := info.FullMethod
		if openService(method) {
			return handler(ctx, req)
		}
		msg, _ := req.(proto.Message)
		r, ok := rules[method]
		if !ok {
			return nil, g.audit(ctx, anonymous, method, "", "", msg, unknownMethod(method))
		}
		if r.open {
			resp, err := handler(ctx, req)
			c, env := claimed(msg), ""
			if c.Agent != nil {
				env = c.Agent.Environment
			}
			if err = g.audit(ctx, c, method, env, "", msg, err); err != nil {
				return nil, err
			}
			return resp, nil
		}
		s, err := g.authenticate(ctx)
		if err != nil {
			return nil, g.audit(ctx, s, method, "", "", msg, err)
		}
		env, dep, err := g.authorize(s, method, r, msg)
		if err != nil {
			if refused(err) || r.mutating {
				return nil, g.audit(ctx, s, method, env, dep, msg, err)
			}
			return nil, err
		}
		resp, err := handler(auth.WithSubject(ctx, s), req)
		if r.mutating {
			err = g.audit(ctx, s, method, env, dep, msg, err)
		}
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// Stream returns the stream server interceptor. The request of a stream
// arrives with its first message: the check runs on it, before the
// handler sees it.
func (g *Guard) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		method := info.FullMethod
		if openService(method) {
			return handler(srv, ss)
		}
		r, ok := rules[method]
		if !ok {
			return g.audit(ss.Context(), anonymous, method, "", "", nil, unknownMethod(method))
		}
		s, err := g.authenticate(ss.Context())
		if err != nil {
			return g.audit(ss.Context(), s, method, "", "", nil, err)
		}
		ctx, cancel := context.WithCancel(auth.WithSubject(ss.Context(), s))
		defer cancel()
		if s.Agent != nil {
			defer g.register(*s.Agent, cancel)()
		}
		gs := &guarded{ServerStream: ss, ctx: ctx, check: func(m proto.Message) error {
			env, dep, err := g.authorize(s, method, r, m)
			if err != nil && (refused(err) || r.mutating) {
				return g.audit(ctx, s, method, env, dep, m, err)
			}
			return err
		}}
		return handler(srv, gs)
	}
}

// guarded is a server stream whose first received message is checked.
type guarded struct {
	grpc.ServerStream
	ctx     context.Context
	check   func(proto.Message) error
	checked bool
}

func (s *guarded) Context() context.Context { return s.ctx }

func (s *guarded) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.checked {
		return nil
	}
	s.checked = true
	msg, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("message %T is not a protobuf message: %w", m, errkind.InvalidArgument)
	}
	return s.check(msg)
}

// register records an agent's open stream; the returned func forgets it.
func (g *Guard) register(a identity.Agent, cancel context.CancelFunc) func() {
	key := new(int)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.streams[a.URI()] == nil {
		g.streams[a.URI()] = map[*int]context.CancelFunc{}
	}
	g.streams[a.URI()][key] = cancel
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.streams[a.URI()], key)
		if len(g.streams[a.URI()]) == 0 {
			delete(g.streams, a.URI())
		}
	}
}

// Disconnect ends every open stream of agent a (its session, its
// transfers): called once its revocation is durable, so that it is cut
// off at once; it is refused when it reconnects.
func (g *Guard) Disconnect(a identity.Agent) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, cancel := range g.streams[a.URI()] {
		cancel()
	}
}
