package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cutover-dev/cutover/controlplane/agentapi"
	"github.com/cutover-dev/cutover/controlplane/audit"
	"github.com/cutover-dev/cutover/controlplane/auth"
	"github.com/cutover-dev/cutover/controlplane/guard"
	"github.com/cutover-dev/cutover/controlplane/transfer"
	"github.com/cutover-dev/cutover/pkg/chunkwire"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// BenchmarkTLSCost measures what TLS costs release transfer: the goodput
// of AgentService.FetchChunks for one release, fetched as an enrolled
// agent, with TLS 1.3 and without, in the same run.
//
// It starts a real controller (TLS), builds a release of seeded random
// data (CUTOVER_BENCH_TLSCOST_MIB, default 256) and prepares it for an
// environment, so that the agent may fetch it. Then it serves the same
// AgentService (one agentapi.Server and one guard, on the controller's
// store, fleet, deployments and CA) on two more listeners, both built by
// newGRPCServer and differing only in their transport credentials:
//
//   - tls: the controller's own TLS configuration (credentials.NewTLS of
//     pki.ServerTLSConfig), the agent dialing with its certificate;
//   - plain: insecure credentials that, once the (empty) handshake is
//     done, hand the guard the agent's certificate as if TLS had verified
//     it. This switch exists only in this benchmark: no daemon flag turns
//     TLS off.
//
// Each iteration fetches the whole release once from each of the three
// listeners (the real controller's too, as a check that the tls listener
// is like it), in an order that rotates from one iteration to the next.
// The clients dial as cutover-agent does (8 MiB flow-control window, 256
// KiB read buffer, chunkwire's pooled receive buffers). Sub-benchmarks:
// receive (count the bytes: the transport alone) and verify (also SHA-256
// each chunk, as an agent does before it writes).
//
// Metrics: MB/s of each listener (10^6 bytes of chunk data per second),
// and tls/plain, the ratio of the tls and plain listeners' goodputs.
//
//	go test -run '^$' -bench TLSCost -benchtime 3x ./controlplane/
func BenchmarkTLSCost(b *testing.B) {
	size := int64(256) << 20
	if s := os.Getenv("CUTOVER_BENCH_TLSCOST_MIB"); s != "" {
		mib, err := strconv.Atoi(s)
		if err != nil || mib <= 0 {
			b.Fatalf("CUTOVER_BENCH_TLSCOST_MIB=%q: want a positive number of MiB", s)
		}
		size = int64(mib) << 20
	}
	f := newTLSCostFixture(b, size)
	for _, verify := range []bool{false, true} {
		name := map[bool]string{false: "receive", true: "verify"}[verify]
		b.Run(name, func(b *testing.B) {
			arms := []struct {
				name string
				conn *grpc.ClientConn
			}{{"controller-tls", f.controller}, {"tls", f.tls}, {"plain", f.plain}}
			secs := make([]float64, len(arms))
			bytes := make([]int64, len(arms))
			b.ResetTimer()
			for i := range b.N {
				for k := range arms {
					j := (i + k) % len(arms)
					start := time.Now()
					n, err := f.fetch(arms[j].conn, verify)
					if err != nil {
						b.Fatalf("%s: %v", arms[j].name, err)
					}
					secs[j] += time.Since(start).Seconds()
					bytes[j] += n
				}
			}
			b.StopTimer()
			mbps := make([]float64, len(arms))
			for k, arm := range arms {
				mbps[k] = float64(bytes[k]) / secs[k] / 1e6
				b.ReportMetric(mbps[k], arm.name+"-MB/s")
			}
			b.ReportMetric(mbps[1]/mbps[2], "tls/plain")
		})
	}
}

// tlsCostFixture is a controller with a prepared release, and three
// connections of an enrolled agent to servers of its AgentService.
type tlsCostFixture struct {
	release                string
	env, agent             string
	ids                    [][]byte
	controller, tls, plain *grpc.ClientConn
}

func newTLSCostFixture(b *testing.B, size int64) *tlsCostFixture {
	b.Helper()
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	if err := writeRandomApp(src, "tlscost", size); err != nil {
		b.Fatal(err)
	}
	c, err := New(Config{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", StopTimeout: 5 * time.Second, SourceRoots: []string{src}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("controller Run: %v", err)
		}
	})
	tc := &testController{addr: c.Addr().String(), dataDir: filepath.Join(dir, "data"), ca: caPool(b, filepath.Join(dir, "data")), ctl: c}
	tc.admin = tc.as(b, "alice", cutoverv1.Role_ROLE_ADMIN)
	f := &tlsCostFixture{env: "bench", agent: "a1"}

	// The environment, its one agent (enrolled; it answers stage by
	// fetching the release once, which also warms the page cache), the
	// release built and prepared.
	if _, err := tc.admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: f.env, TwoStage: true}}); err != nil {
		b.Fatal(err)
	}
	agentTLS, err := tc.enrollAgent(ctx, f.env, f.agent)
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(agentTLS.Certificates[0].Certificate[0])
	if err != nil {
		b.Fatal(err)
	}
	if f.controller, err = dialAgent(tc.addr, credentials.NewTLS(agentTLS)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.controller.Close() })
	go stageOnly(ctx, f.controller, f.env, f.agent)
	if err := poll.Until(ctx, 20*time.Second, func() error {
		resp, err := tc.admin.ListAgents(ctx, &cutoverv1.ListAgentsRequest{Environment: f.env})
		if err == nil && (len(resp.GetAgents()) != 1 || !resp.GetAgents()[0].GetConnected()) {
			err = errors.New("agent not connected yet")
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if _, err := tc.admin.RegisterApplication(ctx, &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: src}}); err != nil {
		b.Fatal(err)
	}
	d, err := tc.admin.CreateDeployment(ctx, &cutoverv1.CreateDeploymentRequest{Environment: f.env,
		Applications: []*cutoverv1.ApplicationVersion{{Name: "tlscost", VersionLabel: "v1"}}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tc.admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d.GetId()}); err != nil {
		b.Fatal(err)
	}
	if err := poll.Until(ctx, 5*time.Minute, func() error {
		got, err := tc.admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: d.GetId()})
		switch {
		case err != nil:
			return err
		case got.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARED:
			f.release = got.GetApplications()[0].GetReleaseId()
			return nil
		case got.GetState() == cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING:
			return errors.New("still preparing")
		}
		return poll.Permanent(fmt.Errorf("deployment %s is %s: %s", got.GetId(), got.GetState(), got.GetError()))
	}); err != nil {
		b.Fatal(err)
	}
	mr, err := cutoverv1.NewAgentServiceClient(f.controller).GetManifest(ctx, &cutoverv1.GetManifestRequest{ReleaseId: f.release})
	if err != nil {
		b.Fatal(err)
	}
	m, err := manifest.Decode(mr.GetManifest())
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range m.ChunkIDs() {
		f.ids = append(f.ids, id[:])
	}

	// The same AgentService, guard included, served twice: over TLS and
	// over plaintext.
	authn := auth.New(auth.Config{Store: c.store, Signer: c.pki, Log: c.log})
	sender, err := transfer.New(transfer.Config{Store: c.store, Log: c.log})
	if err != nil {
		b.Fatal(err)
	}
	agents := agentapi.New(agentapi.Config{Store: c.store, Fleet: c.fleet, Transfer: sender, Auth: authn, Log: c.log})
	g := guard.New(guard.Config{Auth: authn, Resolver: c.deps, Audit: auditTo(audit.New(audit.Config{Store: c.store, Log: c.log})), Log: c.log})
	serve := func(creds credentials.TransportCredentials) string {
		m, err := newRPCMetrics(prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		srv, _ := newGRPCServer(c.log, ctx, creds, g, m, nil, cutoverv1.UnimplementedAdminServiceServer{}, agents)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = srv.Serve(lis) }()
		b.Cleanup(srv.Stop)
		return lis.Addr().String()
	}
	if f.tls, err = dialAgent(serve(credentials.NewTLS(c.pki.ServerTLSConfig())), credentials.NewTLS(agentTLS)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.tls.Close() })
	if f.plain, err = dialAgent(serve(plaintextAs{TransportCredentials: insecure.NewCredentials(), leaf: leaf}), insecure.NewCredentials()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.plain.Close() })
	return f
}

// dialAgent connects to addr as cutover-agent does (agent/session.Dial):
// an 8 MiB stream window, twice that for the connection, a 256 KiB read
// buffer.
func dialAgent(addr string, creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithInitialWindowSize(8<<20), grpc.WithInitialConnWindowSize(16<<20), grpc.WithReadBufferSize(256<<10))
}

// fetch fetches every chunk of the release over conn as the agent does
// (chunkwire's pooled buffers), hashing each when verify is set, and
// returns the chunk bytes received.
func (f *tlsCostFixture) fetch(conn *grpc.ClientConn, verify bool) (int64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := &cutoverv1.FetchChunksRequest{ReleaseId: f.release, Ids: f.ids, Environment: f.env, Agent: f.agent}
	stream, err := cutoverv1.NewAgentServiceClient(conn).FetchChunks(ctx, req, grpc.ForceCodecV2(chunkwire.Codec{}))
	if err != nil {
		return 0, err
	}
	var n int64
	chunks := 0
	for {
		var resp chunkwire.Decoded
		err := stream.RecvMsg(&resp)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		for _, c := range resp.Chunks {
			if c.Compressed {
				resp.Free()
				return n, errors.New("a chunk came compressed: the benchmark's data must be incompressible")
			}
			if verify && manifest.HashChunk(c.Data) != c.ID {
				resp.Free()
				return n, fmt.Errorf("chunk %x does not match its hash", c.ID)
			}
			n += int64(len(c.Data))
			chunks++
		}
		resp.Free()
	}
	if chunks != len(f.ids) {
		return n, fmt.Errorf("got %d chunks, want %d", chunks, len(f.ids))
	}
	return n, nil
}

// plaintextAs is the benchmark's switch: transport credentials that send
// everything in plaintext but tell the server the peer is the agent whose
// certificate is leaf, verified, as TLS would after the handshake. The
// guard, the policy and the handlers then run as they do over TLS.
type plaintextAs struct {
	credentials.TransportCredentials
	leaf *x509.Certificate
}

func (p plaintextAs) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, _, err := p.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return nil, nil, err
	}
	return conn, credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{p.leaf}}},
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (p plaintextAs) Clone() credentials.TransportCredentials {
	return plaintextAs{TransportCredentials: p.TransportCredentials.Clone(), leaf: p.leaf}
}

// stageOnly runs the smallest agent session on conn: a hello, then each
// stage command answered by fetching its releases (verified) and reporting
// them staged; other commands are left unanswered. It returns when the
// stream ends.
func stageOnly(ctx context.Context, conn *grpc.ClientConn, env, name string) {
	client := cutoverv1.NewAgentServiceClient(conn)
	stream, err := client.Connect(ctx)
	if err != nil {
		return
	}
	hello := &cutoverv1.AgentHello{Name: name, Environment: env, Status: &cutoverv1.AgentStatus{}}
	if err := stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		return
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return
		}
		st, ok := msg.Command.(*cutoverv1.ConnectResponse_Stage)
		if !ok {
			continue
		}
		r := &cutoverv1.CommandReport{CommandId: st.Stage.CommandId, DeploymentId: st.Stage.DeploymentId,
			Outcome: cutoverv1.CommandOutcome_COMMAND_OUTCOME_DONE}
		status := &cutoverv1.AgentStatus{}
		for _, ref := range st.Stage.Releases {
			n, err := fetchRelease(ctx, client, ref.ReleaseId)
			if err != nil {
				r.Outcome, r.Error = cutoverv1.CommandOutcome_COMMAND_OUTCOME_FAILED, err.Error()
				break
			}
			r.ReleaseBytes, r.TransferredBytes = r.ReleaseBytes+n, r.TransferredBytes+n
			status.Applications = append(status.Applications, &cutoverv1.AgentApplication{Name: ref.Application, StagedReleaseIds: []string{ref.ReleaseId}})
		}
		if err := stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Status{Status: status}}); err != nil {
			return
		}
		if err := stream.Send(&cutoverv1.ConnectRequest{Msg: &cutoverv1.ConnectRequest_Report{Report: r}}); err != nil {
			return
		}
	}
}

// writeRandomApp writes an application named name to dir: its cutover.yaml
// (the source is the release) and size bytes of seeded random data in
// files of 16 MiB, incompressible so that chunks go out as they are.
func writeRandomApp(dir, name string, size int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	spec := "name: " + name + "\nbuild:\n  command: \"true\"\n  output: .\nrun:\n  command: exec sleep 1000\n"
	if err := os.WriteFile(filepath.Join(dir, "cutover.yaml"), []byte(spec), 0o644); err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 16<<20)
	for i := 0; size > 0; i++ {
		n := min(size, int64(len(buf)))
		_, _ = rng.Read(buf[:n])
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("data-%03d.bin", i)), buf[:n], 0o644); err != nil {
			return err
		}
		size -= n
	}
	return nil
}
