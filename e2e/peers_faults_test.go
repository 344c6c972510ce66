package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/agent/identity"
	"github.com/cutover-dev/cutover/agent/peer"
	agentsession "github.com/cutover-dev/cutover/agent/session"
	"github.com/cutover-dev/cutover/fleetsim"
	"github.com/cutover-dev/cutover/internal/bench"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// enroll enrolls an identity named name in env with a join token, as an
// agent does, and returns it.
func (c *cluster) enroll(env, name string) *identity.Identity {
	c.t.Helper()
	ctx := context.Background()
	token := filepath.Join(c.dir, name+".token")
	if err := c.WriteJoinToken(ctx, env, name, token); err != nil {
		c.t.Fatal(err)
	}
	id, err := identity.LoadOrEnrollRetrying(ctx, identity.Config{Dir: filepath.Join(c.dir, name+"-tls"), Environment: env, Name: name,
		JoinTokenFile: token, CAFile: c.CAFile}, []string{c.Addr}, agentsession.DefaultMinBackoff, agentsession.DefaultMaxBackoff)
	if err != nil {
		c.t.Fatalf("enroll %s in %s: %v", name, env, err)
	}
	return id
}

// fetchFromPeer asks the peer at addr for ids with id's certificate and
// returns how many chunks came, or the call's error.
func fetchFromPeer(t *testing.T, addr string, id *identity.Identity, ids []manifest.ChunkID) (int, error) {
	t.Helper()
	conf := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*id.TLSCertificate()},
		InsecureSkipVerify: true} // the server is not what this test checks
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := &cutoverv1.FetchChunksRequest{}
	for _, c := range ids {
		req.Ids = append(req.Ids, c[:])
	}
	stream, err := cutoverv1.NewPeerServiceClient(conn).FetchChunks(ctx, req)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n += len(resp.GetChunks())
	}
}

// TestPeerRefusesAnotherEnvironment: an agent's peer server sends the
// chunks it holds to an identity of its environment, and refuses one of
// another environment (PERMISSION_DENIED), though the same CA issued it.
func TestPeerRefusesAnotherEnvironment(t *testing.T) {
	t.Parallel()
	c, src := newPeersCluster(t, 2<<20, 13)
	c.createEnv("peers", true)
	c.createEnv("other", true)
	c.startAgents("peers", "fe-1")
	c.registerApp(src)
	id := c.createDeployment("peers", bench.AppName, "v1")
	ids := chunksOnlyIn(t, c, c.prepareAndWait(id).GetApplications()[0].GetReleaseId())

	if n, err := fetchFromPeer(t, c.Agents[0].PeerAddr, c.enroll("peers", "probe"), ids); err != nil || n == 0 {
		t.Fatalf("an identity of the agent's environment got %d chunks, error %v; want the chunks it holds", n, err)
	}
	n, err := fetchFromPeer(t, c.Agents[0].PeerAddr, c.enroll("other", "stranger"), ids)
	if status.Code(err) != codes.PermissionDenied || n != 0 {
		t.Fatalf("an agent of another environment got %d chunks, error %v; want none, PERMISSION_DENIED", n, err)
	}
}

// corruptHeld serves every chunk with one byte flipped.
type corruptHeld struct{ peer.Held }

func (h corruptHeld) ServeHeld(ctx context.Context, ids []manifest.ChunkID, wait func(manifest.ChunkID) bool, fn func(manifest.ChunkID, []byte) error, idle func() error) error {
	return h.Held.ServeHeld(ctx, ids, wait, func(id manifest.ChunkID, data []byte) error {
		bad := append([]byte(nil), data...)
		bad[0] ^= 0xff
		return fn(id, bad)
	}, idle)
}

// TestPeersMaliciousPeer prepares a release on two agents and a malicious
// one: an agent of the environment (enrolled with a join token, a
// simulated agent's real stack) whose peer server sends wrong bytes of
// every chunk. It owns a slice of the swarm; the two agents detect its
// first bad chunk, drop it (cutover_transfer_peer_corrupt_total) and get
// its slice from the controller: the deployment is PREPARED and both
// hold the release byte for byte.
func TestPeersMaliciousPeer(t *testing.T) {
	t.Parallel()
	const size = 16 << 20
	c, src := newPeersCluster(t, size, 14)
	ctx := context.Background()
	c.createEnv("mal", true)
	token := filepath.Join(c.dir, "evil.token")
	if err := c.WriteJoinToken(ctx, "mal", "evil-00000", token); err != nil {
		t.Fatal(err)
	}
	sim, err := fleetsim.New(fleetsim.Config{Controller: c.Addr, Environment: "mal", Agents: 1, JoinTokenFile: token, CAFile: c.CAFile,
		NamePrefix: "evil-", DataDir: filepath.Join(c.dir, "evil"), Peers: true,
		WrapHeld: func(_ string, h peer.Held) peer.Held { return corruptHeld{h} }})
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stop := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-simDone; err != nil {
			t.Errorf("the malicious agent: %v", err)
		}
	})
	if err := sim.WaitConnected(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	c.startAgents("mal", "fe-1", "fe-2") // sorted after evil-00000: all three in one swarm group
	c.registerApp(src)
	id := c.createDeployment("mal", bench.AppName, "v1")
	release := c.prepareAndWait(id).GetApplications()[0].GetReleaseId()
	for _, a := range c.Agents {
		sameFiles(t, src, filepath.Join(a.Root, bench.AppName, "releases", release))
		corrupt, err := bench.Metric(a.MetricsAddr, "cutover_transfer_peer_corrupt_total", nil)
		if err != nil {
			t.Fatal(err)
		}
		if corrupt < 1 {
			t.Errorf("%s counted %.0f corrupt chunks from the malicious peer, want at least 1", a.Name, corrupt)
		}
	}
}

// TestPeersKilledMidTransfer prepares a release on three agents that
// share it as a swarm, with the controller capped so that it takes a few
// seconds; fe-1 is killed (SIGKILL) once it has served its peers some of
// its slice, then started again. The others get the rest of fe-1's slice
// elsewhere; the deployment is PREPARED and every agent holds the
// release byte for byte.
func TestPeersKilledMidTransfer(t *testing.T) {
	t.Parallel()
	const size = 24 << 20
	c, src := newPeersCluster(t, size, 16, "--max-egress", "8MiB")
	ctx := context.Background()
	c.createEnv("killed", true)
	c.startAgents("killed", "fe-1", "fe-2", "fe-3")
	c.registerApp(src)
	id := c.createDeployment("killed", bench.AppName, "v1")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("PrepareDeployment: %v", err)
	}
	victim := c.Agents[0]
	c.waitFor(deployDeadline, "fe-1 serving its slice", func() error {
		served, err := bench.Metric(victim.MetricsAddr, "cutover_transfer_peer_served_bytes_total", nil)
		if err != nil || served == 0 {
			return fmt.Errorf("fe-1 served %.0f bytes (%v)", served, err)
		}
		return nil
	})
	victim.Proc.Kill()
	if err := c.StartAgent(ctx, victim, "killed"); err != nil {
		t.Fatal(err)
	}
	release := c.waitDeployment(id, prepared).GetApplications()[0].GetReleaseId()
	var failures float64
	for _, a := range c.Agents {
		sameFiles(t, src, filepath.Join(a.Root, bench.AppName, "releases", release))
		if a != victim {
			f, err := bench.Metric(a.MetricsAddr, "cutover_transfer_peer_failures_total", nil)
			if err != nil {
				t.Fatal(err)
			}
			failures += f
		}
	}
	if failures < 1 {
		t.Errorf("fe-2 and fe-3 counted %.0f failed peer fetches, want at least one (fe-1 was killed mid-transfer)", failures)
	}
}
