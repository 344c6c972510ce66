package e2e

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/agent/stage"
	agentstore "github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/controlplane/model"
	ctlstore "github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/internal/bench"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestResumeAfterAgentKilled kills the agent with SIGKILL in the middle of
// stage 1, starts it again, and checks that the controller then sent only
// what the agent's store still lacked (the chunks committed before the kill
// are not sent again, and are counted as saved), that the deployment's
// transferred_bytes counts both runs of the stage command (the restarted
// agent counts from 0), and that the materialized release is byte for byte
// the source.
func TestResumeAfterAgentKilled(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	if err := bench.Generate(src, 96<<20, 7); err != nil {
		t.Fatal(err)
	}
	c.createEnv("resume", true)
	c.startAgents("resume", "fe-1")
	a := c.Agents[0]
	c.registerApp(src)
	id := c.createDeployment("resume", bench.AppName, "v1")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("PrepareDeployment: %v", err)
	}

	release, size := c.waitMidTransfer(id)
	a.Proc.Kill()
	sentBefore := c.metric("cutover_transfer_bytes_total", "resume")
	reportedBefore := c.agentTransferred(id)
	missing, err := bench.MissingBytes(a.DataDir, release)
	if err != nil {
		t.Fatal(err)
	}
	if missing <= 0 || missing >= size {
		t.Fatalf("after the kill the agent lacks %d of %d bytes: not in the middle", missing, size)
	}
	t.Logf("killed with %d of %d bytes still missing", missing, size)

	if err := c.RestartAgent(ctx, a, "resume"); err != nil {
		t.Fatal(err)
	}
	c.waitDeployment(id, prepared)
	resent := c.metric("cutover_transfer_bytes_total", "resume") - sentBefore
	if resent < missing || float64(resent) > 1.05*float64(missing)+float64(1<<20) {
		t.Errorf("after the restart the controller sent %d bytes; %d were missing (want at least that and at most 5%% + 1 MiB more)", resent, missing)
	}
	if saved := c.metric("cutover_transfer_saved_bytes_total", "resume"); saved != size-missing {
		t.Errorf("cutover_transfer_saved_bytes_total = %d, want the %d bytes the agent held", saved, size-missing)
	}
	// What the agent received is what it reported before the kill plus what
	// the restarted one received (its counter starts at 0), and never more
	// than the controller sent: the bytes in flight at the kill, and those
	// received but not yet committed, were sent and never counted received.
	received, err := bench.Metric(a.MetricsAddr, "cutover_agent_fetched_wire_bytes_total", nil)
	if err != nil {
		t.Fatal(err)
	}
	total, transferred := c.metric("cutover_transfer_bytes_total", "resume"), c.agentTransferred(id)
	t.Logf("transferred_bytes %d: %d reported before the kill + %d received after the restart; the controller sent %d", transferred, reportedBefore, int64(received), total)
	if transferred < reportedBefore+int64(received) || transferred > total {
		t.Errorf("transferred_bytes = %d, want at least the %d reported before the kill + the %d received after the restart, and at most the %d the controller sent",
			transferred, reportedBefore, int64(received), total)
	}
	sameFiles(t, src, filepath.Join(a.Root, bench.AppName, "releases", release))
}

// waitMidTransfer waits until deployment id's first agent has received
// between a quarter and three quarters of what it must hold, and returns
// the release it stages and its size.
func (c *cluster) waitMidTransfer(id string) (release string, size int64) {
	c.t.Helper()
	c.waitFor(deployDeadline, "agent half way through stage 1", func() error {
		d, err := c.Admin.GetDeployment(context.Background(), &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil {
			return err
		}
		if d.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING {
			return poll.Permanent(errors.New("deployment left PREPARING before the test could interrupt it: " + d.GetState().String()))
		}
		ag := d.GetAgents()[0]
		if ag.GetReleaseBytes() == 0 || ag.GetTransferredBytes() < ag.GetReleaseBytes()/4 {
			return errors.New("not a quarter yet")
		}
		if ag.GetTransferredBytes() > ag.GetReleaseBytes()*3/4 {
			return poll.Permanent(errors.New("the transfer went past three quarters between two polls; the test cannot interrupt it in the middle"))
		}
		release, size = d.GetApplications()[0].GetReleaseId(), ag.GetReleaseBytes()
		return nil
	})
	return release, size
}

// TestTransferredBytesAcrossControllerRestart kills the controller in the
// middle of stage 1 and starts it again. The agent's stage goes on (it
// retries while the controller is away, and joins the resent command to
// the run going on, or runs it again if its run ended), and the
// deployment's transferred_bytes keeps what was reported before the
// restart and counts nothing twice: at least that, at most what the agent
// received (its own counter, all of this deployment).
func TestTransferredBytesAcrossControllerRestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	if err := bench.Generate(src, 96<<20, 11); err != nil {
		t.Fatal(err)
	}
	c.createEnv("ctlrestart", true)
	c.startAgents("ctlrestart", "fe-1")
	a := c.Agents[0]
	c.registerApp(src)
	id := c.createDeployment("ctlrestart", bench.AppName, "v1")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("PrepareDeployment: %v", err)
	}
	release, _ := c.waitMidTransfer(id)
	c.restartController()
	reportedBefore := c.agentTransferred(id) // what the controller had recorded
	c.waitDeployment(id, prepared)
	received, err := bench.Metric(a.MetricsAddr, "cutover_agent_fetched_wire_bytes_total", nil)
	if err != nil {
		t.Fatal(err)
	}
	transferred := c.agentTransferred(id)
	t.Logf("transferred_bytes %d: %d recorded before the restart; the agent received %d", transferred, reportedBefore, int64(received))
	if transferred < reportedBefore || transferred > int64(received) {
		t.Errorf("transferred_bytes = %d, want at least the %d recorded before the restart and at most the %d the agent received",
			transferred, reportedBefore, int64(received))
	}
	sameFiles(t, src, filepath.Join(a.Root, bench.AppName, "releases", release))
}

// agentTransferred returns the transferred_bytes of deployment id's first agent.
func (c *cluster) agentTransferred(id string) int64 {
	c.t.Helper()
	d, err := c.Admin.GetDeployment(context.Background(), &cutoverv1.GetDeploymentRequest{Id: id})
	if err != nil {
		c.t.Fatal(err)
	}
	return d.GetAgents()[0].GetTransferredBytes()
}

// metric returns the controller's counter name{environment=env}.
func (c *cluster) metric(name, env string) int64 {
	c.t.Helper()
	v, err := bench.Metric(c.ControllerMetricsAddr, name, map[string]string{"environment": env})
	if err != nil {
		c.t.Fatal(err)
	}
	return int64(v)
}

// sameFiles fails the test unless every regular file under src is in dir
// with the same bytes and mode, and dir holds no other file.
func sameFiles(t *testing.T, src, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		n++
		rel, _ := filepath.Rel(src, p)
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the source", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			got++
		}
		return nil
	})
	if got != n {
		t.Errorf("%s holds %d files, the source %d", dir, got, n)
	}
}

// TestAbortCollectsChunksOnBothSides prepares a release, aborts the
// deployment, and checks that the agent dropped the release and its chunks
// and that the controller deleted them too (nothing else needs them).
func TestAbortCollectsChunksOnBothSides(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "--collect-every", "100ms")
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	if err := bench.Generate(src, 2<<20, 3); err != nil {
		t.Fatal(err)
	}
	c.createEnv("gc", true)
	c.startAgents("gc", "fe-1")
	a := c.Agents[0]
	c.registerApp(src)
	id := c.createDeployment("gc", bench.AppName, "v1")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("PrepareDeployment: %v", err)
	}
	release := releaseOf(t, c.waitDeployment(id, prepared))
	if _, err := c.Admin.AbortDeployment(ctx, &cutoverv1.AbortDeploymentRequest{Id: id}); err != nil {
		t.Fatalf("AbortDeployment: %v", err)
	}
	c.waitFor(deployDeadline, "the agent drops the release", func() error {
		resp, err := c.Admin.ListAgents(ctx, &cutoverv1.ListAgentsRequest{Environment: "gc"})
		if err != nil {
			return err
		}
		for _, ag := range resp.GetAgents() {
			for _, app := range ag.GetApplications() {
				if len(app.GetStagedReleaseIds()) > 0 {
					return errors.New("still staged: " + strings.Join(app.GetStagedReleaseIds(), ", "))
				}
			}
		}
		return nil
	})
	c.waitFor(deployDeadline, "the controller deletes the release", func() error {
		if !strings.Contains(c.Controller.Tail(400), "deleted unneeded releases and chunks") {
			return errors.New("not yet")
		}
		return nil
	})
	a.Proc.Stop()
	c.Controller.Stop()

	spec, err := appspec.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Build(ctx, src, bench.AppName, *spec, discard{})
	if err != nil {
		t.Fatal(err)
	}
	ids := m.ChunkIDs()
	as, err := agentstore.Open(a.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	held, err := stage.Held(as)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if held[id] {
			t.Errorf("agent still holds chunk %s", id)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(a.Root, bench.AppName, "releases")); err == nil && len(entries) > 0 {
		t.Errorf("the agent's releases dir still holds %v", entries)
	}
	_ = as.View(func(tx *agentstore.Tx) error {
		if _, err := tx.Release(bench.AppName, release); err == nil {
			t.Error("agent still records the release")
		}
		return nil
	})
	cs, err := ctlstore.Open(filepath.Join(c.dir, "controller"))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	_ = cs.View(func(tx model.Tx) error {
		for _, id := range ids {
			if tx.HasChunk(id) {
				t.Errorf("controller still holds chunk %s", id)
			}
		}
		if _, err := tx.Manifest(release); err == nil {
			t.Error("controller still holds the release's manifest")
		}
		return nil
	})
}

// discard is a manifest.ChunkSink that keeps nothing.
type discard struct{}

func (discard) PutChunks([]manifest.Chunk) error { return nil }
