package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/model"
	ctlstore "github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/internal/bench"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestCorruptChunkInTheControllersStoreHeals damages a chunk in the
// controller's store (the controller stopped), then stages the release to
// a fresh agent. The agent refuses the chunk, names it as suspect when it
// asks again; the controller finds its copy corrupt, deletes it and fails
// the deployment naming it. Preparing again rebuilds the chunk, and the
// agent gets the release byte for byte.
func TestCorruptChunkInTheControllersStoreHeals(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	if err := bench.Generate(src, 6<<20, 11); err != nil {
		t.Fatal(err)
	}
	c.createEnv("heal", true)
	c.startAgents("heal", "fe-1")
	c.registerApp(src)
	d1 := c.createDeployment("heal", bench.AppName, "v1")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d1}); err != nil {
		t.Fatal(err)
	}
	release := c.waitDeployment(d1, prepared).GetApplications()[0].GetReleaseId()

	// Damage one chunk of the release in the controller's store.
	c.Controller.Stop()
	st, err := ctlstore.Open(filepath.Join(c.dir, "controller"))
	if err != nil {
		t.Fatal(err)
	}
	var bad manifest.ChunkID
	err = st.Update(func(tx model.Tx) error {
		b, err := tx.Manifest(release)
		if err != nil {
			return err
		}
		m, err := manifest.Decode(b)
		if err != nil {
			return err
		}
		bad = m.ChunkIDs()[1]
		if err := tx.DeleteChunk(bad); err != nil {
			return err
		}
		return tx.PutChunk(bad, []byte("rotten bytes on the controller's disk"))
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	c.restartController()
	if _, err := c.Admin.AbortDeployment(ctx, &cutoverv1.AbortDeploymentRequest{Id: d1}); err != nil {
		t.Fatal(err)
	}
	c.waitDeployment(d1, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ABORTED)

	// A fresh agent cannot get the release; the error says which chunk and
	// what to do. (When both agents fetch at once, the second may find the
	// chunk already deleted: its error says the same.)
	c.startAgents("heal", "fe-2")
	d2 := c.createDeployment("heal", bench.AppName, "v1-again")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d2}); err != nil {
		t.Fatal(err)
	}
	failed := c.waitDeployment(d2, cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED)
	t.Logf("FAILED: %s", failed.GetError())
	if msg := failed.GetError(); !strings.Contains(msg, bad.String()) || !strings.Contains(msg, "prepare the deployment again") {
		t.Errorf("deployment error = %q\nwant it to name chunk %s and say to prepare again", msg, bad)
	}
	if n, err := bench.Metric(c.ControllerMetricsAddr, "cutover_transfer_corrupt_chunks_total", nil); err != nil || n != 1 {
		t.Errorf("cutover_transfer_corrupt_chunks_total = %v (%v), want 1", n, err)
	}

	// Preparing again builds the chunk again, and fe-2 gets the release.
	d3 := c.createDeployment("heal", bench.AppName, "v1-healed")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d3}); err != nil {
		t.Fatal(err)
	}
	c.waitDeployment(d3, prepared)
	fe2 := c.Agents[len(c.Agents)-1]
	sameFiles(t, src, filepath.Join(fe2.Root, bench.AppName, "releases", release))
}
