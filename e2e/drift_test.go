package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/internal/localcluster"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestDriftReconcile: v1 then v2 on two front-ends; on one, current is
// set back to the v1 release by hand (as `ln -sfn` would) and its agent
// restarted, so that it reports what it runs; that front-end is drifted
// (agent list, cutover_agent_drifted) and env reconcile brings it back to
// v2, and to v2 only there.
func TestDriftReconcile(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ctx := context.Background()
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("demo", false)
	c.startAgents("demo", "fe-1", "fe-2")
	c.registerApp(src)

	deploy := func(label string) string {
		t.Helper()
		id := c.createDeployment("demo", "hello", label)
		if _, err := c.Admin.StartDeployment(ctx, &cutoverv1.StartDeploymentRequest{Id: id}); err != nil {
			t.Fatalf("StartDeployment(%s): %v", id, err)
		}
		return releaseOf(t, c.waitDeployment(id, deployed))
	}
	v1 := deploy("v1")
	writeVersion(t, src, "v2")
	v2 := deploy("v2")
	c.checkCurrent("hello", v2)
	c.checkAnswers("v2")
	c.waitDrift(map[string]string{"fe-1": "no", "fe-2": "no"})

	t.Log("fe-2: current set back to v1 by hand, agent restarted")
	fe2 := c.Agents[1]
	current := filepath.Join(fe2.Root, "hello", "current")
	if err := os.Symlink(filepath.Join("releases", v1), current+".by-hand"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(current+".by-hand", current); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartAgent(ctx, fe2, "demo"); err != nil {
		t.Fatalf("restart agent fe-2: %v", err)
	}
	c.waitAnswer(fe2, "v1")
	drift := fmt.Sprintf("yes (hello: runs %s, recorded %s)", v1[:12], v2[:12])
	c.waitDrift(map[string]string{"fe-1": "no", "fe-2": drift})
	c.waitMetric("cutover_agent_drifted", 1, "fe-2", "demo")
	if v, ok := c.scrapeController().find("cutover_agent_drifted", "fe-1", "demo"); !ok || v != 0 {
		t.Errorf("cutover_agent_drifted of fe-1 = %v (%v), want 0", v, ok)
	}

	t.Log("env reconcile")
	code, out, errOut := c.ctl("env", "reconcile", "demo", "--reason", "hand-made change on fe-2", "--wait")
	if code != 0 || !strings.Contains(errOut, "reconciling fe-2 with deployment d-") {
		t.Fatalf("env reconcile: exit %d\n%s\n%s", code, out, errOut)
	}
	c.checkCurrent("hello", v2)
	c.waitAnswer(fe2, "v2")
	c.checkAnswers("v2")
	c.waitDrift(map[string]string{"fe-1": "no", "fe-2": "no"})
	c.waitMetric("cutover_agent_drifted", 0, "fe-2", "demo")

	// The reconcile ran on fe-2 only and left the environment's record.
	ds, err := c.Admin.ListDeployments(ctx, &cutoverv1.ListDeploymentsRequest{Environment: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	rec := ds.GetDeployments()[0]
	if rec.GetState() != deployed || len(rec.GetAgents()) != 1 || rec.GetAgents()[0].GetName() != "fe-2" || releaseOf(t, rec) != v2 {
		t.Errorf("the reconcile deployment:\n%s", asJSON(rec))
	}
	env, err := c.Admin.GetEnvironment(ctx, &cutoverv1.GetEnvironmentRequest{Name: "demo"})
	if v := env.GetDeployedVersions()["hello"]; err != nil || v.GetReleaseId() != v2 || v.GetDeploymentId() != ds.GetDeployments()[1].GetId() {
		t.Errorf("deployed_versions after reconcile: %v, %v", env.GetDeployedVersions(), err)
	}
	code, out, errOut = c.ctl("env", "reconcile", "demo")
	if code != 0 || !strings.Contains(out, "no front-end of demo drifted") {
		t.Errorf("env reconcile with nothing drifted: exit %d\n%s\n%s", code, out, errOut)
	}
}

// waitDrift waits until `cutoverctl agents list --env demo` shows, for
// each agent, the DRIFT cell want[agent] at the end of its row.
func (c *cluster) waitDrift(want map[string]string) {
	c.t.Helper()
	c.waitFor(30*time.Second, fmt.Sprintf("agent list shows DRIFT %v", want), func() error {
		code, out, errOut := c.ctl("agents", "list", "--env", "demo")
		if code != 0 {
			return fmt.Errorf("agents list: exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) == 0 || !strings.HasSuffix(strings.TrimSpace(lines[0]), "DRIFT") {
			return fmt.Errorf("no DRIFT column:\n%s", out)
		}
		for name, cell := range want {
			found := false
			for _, l := range lines[1:] {
				if f := strings.Fields(l); len(f) > 0 && f[0] == name {
					found = strings.HasSuffix(strings.TrimSpace(l), " "+cell)
				}
			}
			if !found {
				return fmt.Errorf("%s's DRIFT is not %q:\n%s", name, cell, out)
			}
		}
		return nil
	})
}

// waitAnswer waits until agent a's app answers version.
func (c *cluster) waitAnswer(a *localcluster.Agent, version string) {
	c.t.Helper()
	c.waitFor(30*time.Second, fmt.Sprintf("%s's app answers %s", a.Name, version), func() error {
		got, err := localcluster.Answer(a.Port)
		if err != nil || got != version {
			return fmt.Errorf("answers %q (%v)", got, err)
		}
		return nil
	})
}

// waitMetric waits until the controller's /metrics shows want for the
// series of name with labels (in the page's order).
func (c *cluster) waitMetric(name string, want float64, labels ...string) {
	c.t.Helper()
	c.waitFor(30*time.Second, fmt.Sprintf("%s%q = %v", name, labels, want), func() error {
		p := c.scrapeController()
		if v, ok := p.find(name, labels...); !ok || v != want {
			return fmt.Errorf("%s%q = %v (present: %v):\n%s", name, labels, v, ok, p.grep(name))
		}
		return nil
	})
}

// scrapeController fetches the controller's /metrics page.
func (c *cluster) scrapeController() metricsPage {
	c.t.Helper()
	p, err := fetchMetrics(c.ControllerMetricsAddr)
	if err != nil {
		c.t.Fatalf("scrape the controller: %v", err)
	}
	return p
}

// fetchMetrics fetches http://addr/metrics.
func fetchMetrics(addr string) (metricsPage, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s/metrics: %s", addr, resp.Status)
	}
	return metricsPage(body), nil
}
