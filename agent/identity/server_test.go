package identity

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/controlplane/pki"
	ident "github.com/cutover-dev/cutover/pkg/identity"
	"github.com/cutover-dev/cutover/pkg/token"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// fakeController is a test-only AgentService that enrolls and renews
// agents with a real pki.Authority, served over its real TLS config.
type fakeController struct {
	cutoverv1.UnimplementedAgentServiceServer
	auth  *pki.Authority
	token token.Token // the one valid join token
	addr  string

	mu      sync.Mutex
	enrolls int
	busy    int           // the next busy Enroll calls answer Unavailable
	keys    []string      // the key of each Enroll call's CSR (its DER SubjectPublicKeyInfo)
	renewed []ident.Agent // who called RenewCertificate
}

func startController(t *testing.T) *fakeController {
	t.Helper()
	auth, err := pki.Open(pki.Config{Dir: filepath.Join(t.TempDir(), "tls"), Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	tok := token.New()
	tok.CAHash = auth.CAHash()
	f := &fakeController{auth: auth, token: tok}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(auth.ServerTLSConfig())))
	cutoverv1.RegisterAgentServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f
}

func (f *fakeController) Enroll(_ context.Context, req *cutoverv1.EnrollRequest) (*cutoverv1.EnrollResponse, error) {
	f.mu.Lock()
	f.enrolls++
	if csr, err := x509.ParseCertificateRequest(req.GetCsr()); err == nil {
		f.keys = append(f.keys, string(csr.RawSubjectPublicKeyInfo))
	}
	busy := f.busy > 0
	if busy {
		f.busy--
	}
	f.mu.Unlock()
	if busy {
		return nil, status.Error(codes.Unavailable, "too busy")
	}
	tok, err := token.ParseJoin(req.GetJoinToken())
	if err != nil || tok.ID != f.token.ID || !tok.Matches(f.token.Hash()) {
		return nil, status.Error(codes.Unauthenticated, "bad join token")
	}
	cert, err := f.auth.SignAgent(req.GetCsr(), ident.Agent{Environment: req.GetEnvironment(), Name: req.GetName()}, "e1", 24*time.Hour)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &cutoverv1.EnrollResponse{Certificate: cert.Raw, CaCertificate: f.auth.CACert().Raw}, nil
}

func (f *fakeController) RenewCertificate(ctx context.Context, req *cutoverv1.RenewCertificateRequest) (*cutoverv1.RenewCertificateResponse, error) {
	p, _ := peer.FromContext(ctx)
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return nil, status.Error(codes.Unauthenticated, "no client certificate")
	}
	id, err := ident.AgentFromCert(info.State.VerifiedChains[0][0])
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	f.mu.Lock()
	f.renewed = append(f.renewed, id)
	f.mu.Unlock()
	cert, err := f.auth.SignAgent(req.GetCsr(), id, "e1", 24*time.Hour)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &cutoverv1.RenewCertificateResponse{Certificate: cert.Raw, CaCertificate: f.auth.CACert().Raw}, nil
}

func (f *fakeController) enrollCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enrolls
}

func (f *fakeController) renewals() []ident.Agent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ident.Agent(nil), f.renewed...)
}

// config returns an agent Config for production/fe-1 in a new directory,
// with a file that holds join (if not empty).
func (f *fakeController) config(t *testing.T, join string) Config {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{Dir: filepath.Join(dir, "tls"), Environment: "production", Name: "fe-1", Log: quietLog()}
	if join != "" {
		cfg.JoinTokenFile = filepath.Join(dir, "join-token")
		if err := os.WriteFile(cfg.JoinTokenFile, []byte(join+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// client returns an AgentService client that authenticates as id.
func (f *fakeController) client(t *testing.T, id *Identity) cutoverv1.AgentServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(credentials.NewTLS(id.ClientTLSConfig())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return cutoverv1.NewAgentServiceClient(conn)
}

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
