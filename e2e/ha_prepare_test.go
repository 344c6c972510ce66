package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/copies"
	"github.com/cutover-dev/cutover/internal/bench"
	"github.com/cutover-dev/cutover/internal/localcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// lacking returns the live controllers other than leader that have not
// recorded release as held (controlplane/copies, what PREPARED waits for).
func (h *haCluster) lacking(leader, release string) []string {
	h.t.Helper()
	got, err := copies.New(h.etcd, h.prefix, leader).Lacking(context.Background(), []string{release})
	if err != nil {
		h.t.Fatal(err)
	}
	return got
}

// agentWireBytes returns what the agent fetched on the wire, committed
// (the metric grows by a batch once the batch is durable).
func agentWireBytes(t *testing.T, a *localcluster.Agent) float64 {
	t.Helper()
	n, err := bench.Metric(a.MetricsAddr, "cutover_agent_fetched_wire_bytes_total", nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLeaderKilledInPrepare: three controllers on one etcd, two agents
// staging a release of about 136 MiB at 10 MiB/s each. Once the followers
// hold the release (mirrored from the leader) and each agent has two of
// its 32 MiB batches durable, the leader is killed (SIGKILL); a follower
// is elected and finishes the prepare from its own copy, without building
// again, and sends only what the agents lacked: the bytes the new leader
// sent are at most the release twice, less what the agents had, plus the
// batches that were in flight. PREPARED means every live controller holds
// the release.
func TestLeaderKilledInPrepare(t *testing.T) {
	t.Parallel()
	h := newHACluster(t, haTTL)
	ctx := context.Background()
	src := filepath.Join(h.dir, "src")
	copyApp(t, src, "v1")
	writeRandomFile(t, filepath.Join(src, "data", "big.bin"), 128<<20, 16)
	if _, err := h.Admin.CreateEnvironment(ctx, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{
		Name: "ha", TwoStage: true, StageRate: 10 << 20,
		Database: &cutoverv1.Database{Driver: "sqlite", Dsn: filepath.Join(h.dir, "ha.db")}}}); err != nil {
		t.Fatal(err)
	}
	h.startAgents("ha", "fe-1", "fe-2")
	app := h.registerApp(src)
	id := h.createDeployment("ha", app, "v1")
	first, epoch := h.leaderAddr()
	admin := h.client(first)
	if _, err := admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	const batch = 32 << 20 // agent/stage.DefaultCommitBytes
	var release string
	h.waitFor(deployDeadline, "the followers hold the release and each agent has two batches", func() error {
		d, err := admin.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil {
			return err
		}
		if d.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING {
			return fmt.Errorf("the deployment is %s already: the test missed its moment (%s)", d.GetState(), d.GetError())
		}
		if len(d.GetApplications()) != 1 || d.GetApplications()[0].GetReleaseId() == "" {
			return fmt.Errorf("not built yet")
		}
		release = d.GetApplications()[0].GetReleaseId()
		if lack := h.lacking(first, release); len(lack) > 0 {
			return fmt.Errorf("the followers %v do not hold %s yet", lack, release)
		}
		for _, a := range h.Agents {
			if n := agentWireBytes(t, a); n < 2*batch {
				return fmt.Errorf("%s has %.0f bytes durable", a.Name, n)
			}
		}
		return nil
	})
	had := 0.0
	for _, a := range h.Agents {
		had += agentWireBytes(t, a)
	}
	h.hc.Kill(first)
	t.Logf("leader %s (epoch %d) killed during prepare; the agents had %.0f bytes durable", first, epoch, had)

	next, _ := h.leaderAddr(first)
	viaNext := h.client(next)
	var d *cutoverv1.Deployment
	h.waitFor(deployDeadline, "PREPARED under the new leader", func() error {
		var err error
		if d, err = viaNext.GetDeployment(ctx, &cutoverv1.GetDeploymentRequest{Id: id}); err != nil {
			return err
		}
		if d.GetState() != prepared {
			return fmt.Errorf("%s is %s (%s)", id, d.GetState(), d.GetError())
		}
		return nil
	})
	if got := releaseOf(t, d); got != release {
		t.Fatalf("prepared %s, built %s: the new leader built again", got, release)
	}
	size := float64(d.GetAgents()[0].GetReleaseBytes())
	sent, err := bench.Metric(h.hc.MetricsAddrs[next], "cutover_transfer_bytes_total", map[string]string{"environment": "ha"})
	if err != nil {
		t.Fatal(err)
	}
	bound := 2*size - had + 2*(batch+4<<20)
	t.Logf("the new leader sent %.0f bytes; the release is %.0f bytes, the agents had %.0f: at most %.0f expected, %.0f if it had all been sent again",
		sent, size, had, bound, 2*size)
	if sent > bound {
		t.Errorf("the new leader sent %.0f bytes, more than the %.0f the agents lacked (with the batches in flight): what they had was sent again", sent, bound)
	}
	if lack := h.lacking(next, release); len(lack) > 0 {
		t.Errorf("PREPARED, but the controllers %v do not hold the release", lack)
	}
	h.checkMaterialized(src, app, release)
}
