// Package forward passes the operator calls that a follower controller
// receives to the leader, so that an operator (cutoverctl, grpcurl, a
// script) may call any controller of those sharing one etcd. The call goes
// as it came: the same method, request and metadata (the operator's token
// among them: the leader authenticates, authorizes and audits it as if it
// had been called directly); its answer, headers, trailers and error come
// back as they left the leader. The follower's connection to the leader
// is TLS, and the leader must prove it is a controller of the same CA
// (cutover://controller), so that a token is never sent elsewhere.
//
// Only the services named in Config.Services are forwarded (AdminService);
// the agents' service is not: an agent follows the leader itself
// (errkind.NotLeader), because it authenticates with its own certificate.
package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Config configures a Forwarder.
type Config struct {
	// Leader says where the leader is: its address, and whether this
	// controller is it (then nothing is forwarded). addr is "" when no
	// leader is known.
	Leader func() (addr string, self bool)
	// TLS is the client configuration for the connection to the leader:
	// it must verify that the peer is a controller (pkg/identity).
	TLS *tls.Config
	// Services are the full names of the services to forward, for
	// example "cutover.v1.AdminService".
	Services []string
}

// Forwarder holds a connection to the leader.
type Forwarder struct {
	cfg Config

	mu    sync.Mutex
	addr  string
	conn  *grpc.ClientConn
	types sync.Map // full method → [2]protoreflect.MessageType (input, output)
}

// New returns a Forwarder.
func New(cfg Config) *Forwarder { return &Forwarder{cfg: cfg} }

// Close closes the connection to the leader.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return nil
	}
	err := f.conn.Close()
	f.conn, f.addr = nil, ""
	return err
}

// target returns the connection to the leader, or ok=false when this
// controller leads or the method is not forwarded.
func (f *Forwarder) target(method string) (conn *grpc.ClientConn, ok bool, err error) {
	service, _, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if !slices.Contains(f.cfg.Services, service) {
		return nil, false, nil
	}
	addr, self := f.cfg.Leader()
	if self {
		return nil, false, nil
	}
	if addr == "" {
		return nil, true, &errkind.NotLeader{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil && f.addr == addr {
		return f.conn, true, nil
	}
	if f.conn != nil {
		_ = f.conn.Close()
		f.conn = nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(f.cfg.TLS)))
	if err != nil {
		return nil, true, fmt.Errorf("connect to the leader at %s: %w: %w", addr, err, errkind.Unavailable)
	}
	f.conn, f.addr = c, addr
	return c, true, nil
}

// messageTypes returns the request and response types of a method.
func (f *Forwarder) messageTypes(method string) (in, out protoreflect.MessageType, err error) {
	if v, ok := f.types.Load(method); ok {
		t := v.([2]protoreflect.MessageType)
		return t[0], t[1], nil
	}
	service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, nil, fmt.Errorf("forward %s: %w", method, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, nil, fmt.Errorf("forward %s: %s is not a service", method, service)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, nil, fmt.Errorf("forward %s: no such method", method)
	}
	if in, err = protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName()); err != nil {
		return nil, nil, err
	}
	if out, err = protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName()); err != nil {
		return nil, nil, err
	}
	f.types.Store(method, [2]protoreflect.MessageType{in, out})
	return in, out, nil
}

// outgoing carries the caller's metadata to the leader, without what
// belongs to the hop (pseudo-headers, content type, gRPC's own keys).
func outgoing(ctx context.Context) context.Context {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range in {
		if strings.HasPrefix(k, ":") || strings.HasPrefix(k, "grpc-") || k == "content-type" || k == "user-agent" || k == "te" {
			continue
		}
		out[k] = v
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// Unary forwards unary calls.
func (f *Forwarder) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		conn, ok, err := f.target(info.FullMethod)
		if !ok {
			return handler(ctx, req)
		}
		if err != nil {
			return nil, err
		}
		_, outType, err := f.messageTypes(info.FullMethod)
		if err != nil {
			return nil, err
		}
		reply := outType.New().Interface()
		var header, trailer metadata.MD
		err = conn.Invoke(outgoing(ctx), info.FullMethod, req, reply, grpc.Header(&header), grpc.Trailer(&trailer))
		_ = grpc.SetHeader(ctx, header)
		grpc.SetTrailer(ctx, trailer)
		if err != nil {
			return nil, err // the leader's status, as it is
		}
		return reply, nil
	}
}

// Stream forwards streaming calls, in both directions.
func (f *Forwarder) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		conn, ok, err := f.target(info.FullMethod)
		if !ok {
			return handler(srv, ss)
		}
		if err != nil {
			return err
		}
		inType, outType, err := f.messageTypes(info.FullMethod)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		cs, err := conn.NewStream(outgoing(ctx), &grpc.StreamDesc{ServerStreams: info.IsServerStream, ClientStreams: info.IsClientStream}, info.FullMethod)
		if err != nil {
			return err
		}
		up := make(chan error, 1)
		go func() { up <- pump(ss.RecvMsg, cs.SendMsg, inType, cs.CloseSend) }()
		down := pump(cs.RecvMsg, ss.SendMsg, outType, nil)
		if md, err := cs.Header(); err == nil {
			_ = ss.SetHeader(md)
		}
		ss.SetTrailer(cs.Trailer())
		if errors.Is(down, io.EOF) {
			return nil
		}
		return down
	}
}

// pump copies messages from recv to send until recv fails; at the end of
// the input (io.EOF) it calls done, if any. It returns recv's error.
func pump(recv func(any) error, send func(any) error, t protoreflect.MessageType, done func() error) error {
	for {
		m := t.New().Interface()
		if err := recv(m); err != nil {
			if errors.Is(err, io.EOF) && done != nil {
				_ = done()
			}
			return err
		}
		if err := send(proto.Message(m)); err != nil {
			return err
		}
	}
}
