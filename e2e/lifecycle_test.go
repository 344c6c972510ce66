package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/cutover-dev/cutover/agent/stage"
	agentstore "github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/manifest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

const expired = cutoverv1.DeploymentState_DEPLOYMENT_STATE_EXPIRED

// TestRollbackCommandAndExpiry drives the real binaries through the rollback
// command (every agent back on the previous release, serving it, the
// environment's deployed version back) and the expiry of a prepared
// deployment (its release directory and chunks dropped on every agent, the
// running release kept, continue refused with the exact message).
func TestRollbackCommandAndExpiry(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("demo", true)
	c.startAgents("demo", "fe-1", "fe-2", "fe-3")
	c.registerApp(src)

	t.Log("v1 then v2, each in a single stage")
	d1 := c.createDeployment("demo", "hello", "v1")
	if _, err := c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: d1}); err != nil {
		t.Fatal(err)
	}
	v1 := releaseOf(t, c.waitDeployment(d1, deployed))
	writeVersion(t, src, "v2")
	d2 := c.createDeployment("demo", "hello", "v2")
	if _, err := c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: d2}); err != nil {
		t.Fatal(err)
	}
	v2 := releaseOf(t, c.waitDeployment(d2, deployed))
	c.checkAnswers("v2")

	t.Log("rollback of v2 through cutoverctl")
	code, out, errOut := c.ctl("deploy", "rollback", d2, "--reason", "e2e", "--wait")
	if code != 0 || !strings.Contains(errOut, "the database is NOT rolled back") || !strings.Contains(out, "ROLLED_BACK") {
		t.Fatalf("cutoverctl deploy rollback %s --wait: exit %d\n%s\n%s", d2, code, out, errOut)
	}
	dep2 := c.waitDeployment(d2, rolledBack)
	for _, a := range dep2.GetAgents() {
		if a.GetState() != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_ROLLED_BACK {
			t.Errorf("agent %s after the rollback: %s", a.GetName(), a.GetState())
		}
	}
	c.checkCurrent("hello", v1)
	c.checkAnswers("v1")
	c.waitStaged("demo", "hello", v1, "")
	env, err := c.Admin.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: "demo"})
	if v := env.GetDeployedVersions()["hello"]; err != nil || v.GetReleaseId() != v1 || v.GetDeploymentId() != d1 || v.GetVersionLabel() != "v1" {
		t.Errorf("deployed_versions after the rollback: %v (%v), want v1 from %s", env.GetDeployedVersions(), err, d1)
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Log("v3 prepared with a 2s prepared_ttl expires")
	if _, err := c.Admin.UpdateEnvironment(ctx, &cutoverv1.UpdateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: "demo", PreparedTtl: durationpb.New(2 * time.Second)},
		UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"prepared_ttl"}}}); err != nil {
		t.Fatal(err)
	}
	writeVersion(t, src, "v3")
	d3 := c.createDeployment("demo", "hello", "v3")
	if _, err := c.Admin.PrepareDeployment(ctx, &cutoverv1.PrepareDeploymentRequest{Id: d3}); err != nil {
		t.Fatal(err)
	}
	dep3 := c.waitDeployment(d3, prepared)
	v3 := releaseOf(t, dep3)
	for _, a := range c.Agents {
		if _, err := os.Stat(filepath.Join(a.Root, "hello", "releases", v3)); err != nil {
			t.Fatalf("agent %s: the staged release: %v", a.Name, err)
		}
	}
	dep3 = c.waitDeployment(d3, expired) // the controller's timer, in real time
	t.Logf("EXPIRED %s after expire_time", dep3.GetFinishTime().AsTime().Sub(dep3.GetExpireTime().AsTime()))
	want := fmt.Sprintf("deployment %s expired at %s (prepared_ttl 2s); prepare it again", d3, dep3.GetExpireTime().AsTime().UTC().Format(time.RFC3339))
	_, err = c.Admin.ContinueDeployment(ctx, &cutoverv1.ContinueDeploymentRequest{Id: d3})
	if status.Code(err) != codes.FailedPrecondition || status.Convert(err).Message() != want {
		t.Errorf("ContinueDeployment of the expired deployment: %v\nwant FailedPrecondition %q", err, want)
	}
	c.waitFor(deployDeadline, "every agent drops v3", func() error {
		for _, a := range c.Agents {
			if _, err := os.Stat(filepath.Join(a.Root, "hello", "releases", v3)); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("agent %s: release dir of v3: %v", a.Name, err)
			}
		}
		return nil
	})
	c.checkCurrent("hello", v1)
	c.checkAnswers("v1")

	// The chunks only v3 had are gone from the agent; the running
	// release's are all there. The store is read with the agent stopped.
	unique, kept := chunksOnlyIn(t, c, v3, v1, v2), chunksOnlyIn(t, c, v1)
	if len(unique) == 0 {
		t.Fatal("v3 has no chunk of its own: the test cannot tell")
	}
	a := c.Agents[0]
	a.Proc.Stop()
	st, err := agentstore.Open(a.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	held, err := stage.Held(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range unique {
		if held[id] {
			t.Errorf("agent %s still holds chunk %x of the expired release", a.Name, id[:6])
		}
	}
	for _, id := range kept {
		if !held[id] {
			t.Errorf("agent %s lost chunk %x of the running release", a.Name, id[:6])
		}
	}
}

// chunksOnlyIn returns the chunk ids of release id that none of the other
// releases has, read from the controller's manifests as the first agent.
func chunksOnlyIn(t *testing.T, c *cluster, id string, others ...string) []manifest.ChunkID {
	t.Helper()
	conn, err := c.AgentConn(c.Agents[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	agents := cutoverv1.NewAgentServiceClient(conn)
	chunks := func(id string) []manifest.ChunkID {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := agents.GetManifest(ctx, &cutoverv1.GetManifestRequest{ReleaseId: id})
		if err != nil {
			t.Fatalf("GetManifest(%s): %v", id, err)
		}
		m, err := manifest.Decode(resp.GetManifest())
		if err != nil {
			t.Fatal(err)
		}
		return m.ChunkIDs()
	}
	seen := map[manifest.ChunkID]bool{}
	for _, o := range others {
		for _, c := range chunks(o) {
			seen[c] = true
		}
	}
	var out []manifest.ChunkID
	for _, c := range chunks(id) {
		if !seen[c] {
			out = append(out, c)
		}
	}
	return out
}
