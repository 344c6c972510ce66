package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/internal/bench"
	"github.com/cutover-dev/cutover/internal/localcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestPeersShareTheRelease prepares a 16 MiB release on one agent, then
// starts two more agents of the environment (all with --peer-listen): the
// controller stages them in the background naming fe-1 as the peer that
// holds the release, and they fetch it from fe-1 over mutual TLS rather
// than from the controller. Every release directory must be the source
// byte for byte, and the controller must have sent the two late agents
// (almost) nothing.
func TestPeersShareTheRelease(t *testing.T) {
	t.Parallel()
	const size = 16 << 20
	c, src := newPeersCluster(t, size, 11)
	ctx := context.Background()
	c.createEnv("peers", true)
	c.startAgents("peers", "fe-1")
	c.registerApp(src)
	id := c.createDeployment("peers", bench.AppName, "v1")
	d := c.prepareAndWait(id)
	release := d.GetApplications()[0].GetReleaseId()
	before := c.metric("cutover_transfer_bytes_total", "peers")

	c.startAgents("peers", "fe-2", "fe-3")
	c.waitFor(deployDeadline, "fe-2 and fe-3 staged", func() error {
		d, err := c.Admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil {
			return err
		}
		staged := 0
		for _, a := range d.GetAgents() {
			if a.GetState() == cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED {
				staged++
			}
		}
		if staged != 3 {
			return fmt.Errorf("%d of 3 agents staged", staged)
		}
		return nil
	})
	sent := c.metric("cutover_transfer_bytes_total", "peers") - before
	t.Logf("the controller sent %d bytes to the two agents that joined; the release is %d", sent, size)
	if sent > size/10 {
		t.Errorf("the controller sent %d bytes to stage two agents a peer could serve, want at most a tenth of the %d-byte release", sent, size)
	}
	for _, a := range c.Agents {
		sameFiles(t, src, filepath.Join(a.Root, bench.AppName, "releases", release))
		if a.Name == "fe-1" {
			continue
		}
		got, err := bench.Metric(a.MetricsAddr, "cutover_transfer_peer_received_bytes_total", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got < size/2 {
			t.Errorf("%s received %.0f bytes from peers, want most of the %d-byte release", a.Name, got, size)
		}
	}
}

// TestPeersSwarmPrepare prepares a 32 MiB release on four agents at once,
// all with --peer-listen: they stage it as a swarm, each fetching a slice
// from the controller and the rest from the others as they write it.
// Every release directory must be the source byte for byte, and the
// controller must have sent about one release, not four.
func TestPeersSwarmPrepare(t *testing.T) {
	t.Parallel()
	const size = 32 << 20
	c, src := newPeersCluster(t, size, 12)
	c.createEnv("swarm", true)
	c.startAgents("swarm", "fe-1", "fe-2", "fe-3", "fe-4")
	c.registerApp(src)
	id := c.createDeployment("swarm", bench.AppName, "v1")
	d := c.prepareAndWait(id)
	release := d.GetApplications()[0].GetReleaseId()
	sent := c.metric("cutover_transfer_bytes_total", "swarm")
	t.Logf("the controller sent %d bytes to stage four agents at once; the release is %d", sent, size)
	if sent > size*3/2 {
		t.Errorf("the controller sent %d bytes to stage a %d-byte release on four agents at once, want at most 1.5 releases", sent, size)
	}
	for _, a := range c.Agents {
		sameFiles(t, src, filepath.Join(a.Root, bench.AppName, "releases", release))
		got, err := bench.Metric(a.MetricsAddr, "cutover_transfer_peer_received_bytes_total", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got < size/2 {
			t.Errorf("%s received %.0f bytes from peers, want most of the %d-byte release", a.Name, got, size)
		}
	}
}

// TestPeersOffPerEnvironment: an environment with peers_disabled (set
// through UpdateEnvironment, as cutoverctl env update --peers=false does)
// prepares on agents started with --peer-listen from the controller only:
// it sends the release to each agent, and no agent receives a byte from
// a peer.
func TestPeersOffPerEnvironment(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	c, src := newPeersCluster(t, size, 17)
	ctx := context.Background()
	c.createEnv("quiet", true)
	env, err := c.Admin.UpdateEnvironment(ctx, &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "quiet", PeersDisabled: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"peers_disabled"}}})
	if err != nil || !env.GetPeersDisabled() {
		t.Fatalf("UpdateEnvironment peers_disabled: %v, %v", env, err)
	}
	c.startAgents("quiet", "fe-1", "fe-2", "fe-3")
	c.registerApp(src)
	id := c.createDeployment("quiet", bench.AppName, "v1")
	release := c.prepareAndWait(id).GetApplications()[0].GetReleaseId()
	if sent := c.metric("cutover_transfer_bytes_total", "quiet"); sent < 3*size {
		t.Errorf("the controller sent %d bytes to three agents with peers off, want at least three releases (%d)", sent, 3*size)
	}
	for _, a := range c.Agents {
		sameFiles(t, src, filepath.Join(a.Root, bench.AppName, "releases", release))
		got, err := bench.Metric(a.MetricsAddr, "cutover_transfer_peer_received_bytes_total", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got != 0 {
			t.Errorf("%s received %.0f bytes from peers in an environment with peers off", a.Name, got)
		}
	}
}

// newPeersCluster starts a cluster whose agents serve peers
// (--peer-listen), its controller started with controllerArgs, and
// writes size bytes of data seeded with seed as the application's source,
// whose directory it returns.
func newPeersCluster(t *testing.T, size int64, seed uint64, controllerArgs ...string) (*cluster, string) {
	t.Helper()
	c := newClusterWith(t, localcluster.Config{AgentPeers: true, ControllerArgs: controllerArgs})
	src := filepath.Join(c.dir, "src")
	if err := bench.Generate(src, size, seed); err != nil {
		t.Fatal(err)
	}
	return c, src
}
