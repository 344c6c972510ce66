package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/controlplane/pki"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/rpcerr"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// admin is an AdminService that says who answered, and echoes the
// caller's token.
type admin struct {
	cutoverv1.UnimplementedAdminServiceServer
	who string
}

func token(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	return strings.Join(md.Get("authorization"), ",")
}

func (a *admin) GetEnvironment(ctx context.Context, req *cutoverv1.GetEnvironmentRequest) (*cutoverv1.Environment, error) {
	if req.GetName() == "missing" {
		return nil, status.Error(codes.NotFound, `environment "missing" does not exist`)
	}
	return &cutoverv1.Environment{Name: a.who + ":" + req.GetName() + ":" + token(ctx)}, nil
}

func (a *admin) WatchDeployment(req *cutoverv1.WatchDeploymentRequest, s grpc.ServerStreamingServer[cutoverv1.DeploymentEvent]) error {
	for i := range 3 {
		if err := s.Send(&cutoverv1.DeploymentEvent{Message: a.who + ":" + req.GetId() + ":" + string(rune('0'+i)) + ":" + token(s.Context())}); err != nil {
			return err
		}
	}
	return nil
}

// server serves an admin on loopback over the TLS of a CA made in dir,
// with the forwarder's interceptors when f is not nil.
func server(t *testing.T, ca *pki.Authority, who string, f *Forwarder) string {
	t.Helper()
	opts := []grpc.ServerOption{grpc.Creds(credentials.NewTLS(ca.ServerTLSConfig()))}
	if f != nil {
		log := slog.New(slog.DiscardHandler)
		opts = append(opts, grpc.ChainUnaryInterceptor(rpcerr.UnaryServerInterceptor(log), f.Unary()),
			grpc.ChainStreamInterceptor(rpcerr.StreamServerInterceptor(log), f.Stream()))
	}
	srv := grpc.NewServer(opts...)
	cutoverv1.RegisterAdminServiceServer(srv, &admin{who: who})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func clientTLS(ca *pki.Authority) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, // VerifyConnection checks the CA and cutover://controller
		VerifyConnection: identity.VerifyController(ca.CAPool())}
}

func newCA(t *testing.T) *pki.Authority {
	t.Helper()
	ca, err := pki.Open(pki.Config{Dir: t.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func client(t *testing.T, ca *pki.Authority, addr string) cutoverv1.AdminServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(ca))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return cutoverv1.NewAdminServiceClient(conn)
}

func TestForward(t *testing.T) {
	ca := newCA(t)
	leaderAddr := server(t, ca, "leader", nil)
	var leading, unknown atomic.Bool
	f := New(Config{TLS: clientTLS(ca), Services: []string{"cutover.v1.AdminService"},
		Leader: func() (string, bool) {
			if unknown.Load() {
				return "", false
			}
			return leaderAddr, leading.Load()
		}})
	t.Cleanup(func() { _ = f.Close() })
	c := client(t, ca, server(t, ca, "follower", f))
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok"), 10*time.Second)
	defer cancel()

	env, err := c.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: "prod"})
	if err != nil || env.GetName() != "leader:prod:Bearer tok" {
		t.Fatalf("unary call = %v, %v; want the leader's answer with the caller's token", env, err)
	}
	_, err = c.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: "missing"})
	if st := status.Convert(err); st.Code() != codes.NotFound || !strings.Contains(st.Message(), "missing") {
		t.Fatalf("the leader's error came back as %v", err)
	}
	stream, err := c.WatchDeployment(ctx, &cutoverv1.WatchDeploymentRequest{Id: "d-1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.GetMessage())
	}
	if strings.Join(got, " ") != "leader:d-1:0:Bearer tok leader:d-1:1:Bearer tok leader:d-1:2:Bearer tok" {
		t.Fatalf("stream = %q", got)
	}

	leading.Store(true) // this controller leads: served here
	if env, err := c.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: "prod"}); err != nil || !strings.HasPrefix(env.GetName(), "follower:") {
		t.Fatalf("a leader's own call = %v, %v; want it served locally", env, err)
	}
	leading.Store(false)
	unknown.Store(true) // no leader elected
	_, err = c.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: "prod"})
	var nl *errkind.NotLeader
	if !errors.As(rpcerr.FromStatus(err), &nl) || status.Code(err) != codes.Unavailable {
		t.Fatalf("with no leader: %v; want Unavailable NotLeader", err)
	}
}

// TestForwardOnlyToAController checks that a token is never sent to a
// leader address whose server is not a controller of the CA.
func TestForwardOnlyToAController(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	impostor := server(t, other, "impostor", nil)
	f := New(Config{TLS: clientTLS(ca), Services: []string{"cutover.v1.AdminService"},
		Leader: func() (string, bool) { return impostor, false }})
	t.Cleanup(func() { _ = f.Close() })
	c := client(t, ca, server(t, ca, "follower", f))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: "prod"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("forwarding to a server of another CA: %v; want Unavailable", err)
	}
}
