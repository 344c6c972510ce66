package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// tool returns the path of an external tool the test needs. A missing tool
// fails the test under CI=true (CI installs it: .ci/run) and skips it
// otherwise.
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not on PATH; .ci/run installs it", name)
		}
		t.Skipf("%s is not on PATH (CI installs it; see .ci/run)", name)
	}
	return path
}

// runGrpcurl runs the real grpcurl with args and returns its standard
// output and error.
func runGrpcurl(path string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// grpcurl runs the real grpcurl against the controller with args and
// returns its standard output; it fails the test if grpcurl fails.
func (c *cluster) grpcurl(path string, args ...string) string {
	c.t.Helper()
	out, errOut, err := runGrpcurl(path, args...)
	if err != nil {
		c.t.Fatalf("grpcurl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// grpcurlTLS returns grpcurl's flags to trust the controller's CA and, if
// token is set, to send it as `authorization: Bearer`.
func (c *cluster) grpcurlTLS(token string) []string {
	args := []string{"-cacert", c.CAFile}
	if token != "" {
		args = append(args, "-H", "authorization: Bearer "+token)
	}
	return args
}

// call invokes an AdminService method with grpcurl over TLS with the
// bootstrap admin token and the JSON request body, and decodes the JSON
// answer into resp.
func (c *cluster) call(path, method, body string, resp proto.Message) {
	c.t.Helper()
	token, err := c.AdminToken()
	if err != nil {
		c.t.Fatal(err)
	}
	out := c.grpcurl(path, append(c.grpcurlTLS(token), "-d", body, c.Addr, "cutover.v1.AdminService/"+method)...)
	if err := protojson.Unmarshal([]byte(out), resp); err != nil {
		c.t.Fatalf("%s answered what is not a %T (%v):\n%s", method, resp, err, out)
	}
}

// grpcurlEvery is the least time between two GetDeployment polls by grpcurl.
const grpcurlEvery = 500 * time.Millisecond

// pollState calls GetDeployment with grpcurl until deployment id leaves
// the state busy, and fails the test unless it is then in want.
func (c *cluster) pollState(path, id string, busy, want cutoverv1.DeploymentState) *cutoverv1.Deployment {
	c.t.Helper()
	d := &cutoverv1.Deployment{}
	var last time.Time
	c.waitFor(deployDeadline, fmt.Sprintf("deployment %s to leave %s", id, busy), func() error {
		// One grpcurl (a process and a reflection round) per grpcurlEvery,
		// not per poll: the machine runs other tests meanwhile.
		if time.Since(last) < grpcurlEvery {
			return fmt.Errorf("still %s", d.GetState())
		}
		last = time.Now()
		c.call(path, "GetDeployment", `{"id": "`+id+`"}`, d)
		if d.GetState() == busy {
			return fmt.Errorf("still %s", busy)
		}
		return nil
	})
	if d.GetState() != want {
		c.t.Fatalf("deployment %s is %s, want %s:\n%s", id, d.GetState(), want, asJSON(d))
	}
	return d
}

// TestGrpcurlTwoStageAndMetrics drives a whole two-stage deployment with
// the real grpcurl and JSON alone, over TLS with the controller's CA and
// the bootstrap admin token as `authorization: Bearer` (as the README's
// "Driving cutover with grpcurl" section does), after checking that list,
// describe and the health check work without a token and a call without
// one is refused; it scrapes the controller's and the agent's /metrics before,
// between the stages and after, checks that the counters and histograms
// moved, and runs `promtool check metrics` on every page. Every log line of
// the controller and the agent about the deployment names its environment.
func TestGrpcurlTwoStageAndMetrics(t *testing.T) {
	t.Parallel()
	grpcurl := tool(t, "grpcurl")
	promtool := tool(t, "promtool")
	c := newCluster(t)
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")

	// list, describe and the health check need the CA, not a token.
	list := c.grpcurl(grpcurl, append(c.grpcurlTLS(""), c.Addr, "list")...)
	for _, svc := range []string{"cutover.v1.AdminService", "cutover.v1.AgentService", "grpc.health.v1.Health"} {
		if !strings.Contains(list, svc+"\n") {
			t.Errorf("grpcurl list lacks %s:\n%s", svc, list)
		}
	}
	if out, errOut, err := runGrpcurl(grpcurl, append(c.grpcurlTLS(""), c.Addr, "cutover.v1.AdminService/ListEnvironments")...); err == nil ||
		!strings.Contains(out+errOut, "Unauthenticated") {
		t.Errorf("grpcurl ListEnvironments without a token: %v, want Unauthenticated:\n%s%s", err, out, errOut)
	}
	desc := c.grpcurl(grpcurl, append(c.grpcurlTLS(""), c.Addr, "describe", "cutover.v1.AdminService")...)
	for _, rpc := range []string{"CreateEnvironment", "RegisterApplication", "CreateDeployment", "PrepareDeployment",
		"ContinueDeployment", "GetDeployment", "WatchDeployment", "ListAgents"} {
		if !strings.Contains(desc, "rpc "+rpc+" ") {
			t.Errorf("grpcurl describe lacks %s:\n%s", rpc, desc)
		}
	}
	if got := c.grpcurl(grpcurl, append(c.grpcurlTLS(""), c.Addr, "grpc.health.v1.Health/Check")...); !strings.Contains(got, `"status": "SERVING"`) {
		t.Errorf("health check answered %s", got)
	}

	db := filepath.Join(c.dir, "production.db")
	c.call(grpcurl, "CreateEnvironment", `{"environment": {"name": "production", "two_stage": true,
		"database": {"driver": "sqlite", "dsn": "`+db+`"}}}`, &cutoverv1.Environment{})
	c.startAgents("production", "fe-1")
	agent := c.Agents[0]
	before := scrape(t, promtool, c.ControllerMetricsAddr)
	for _, st := range []string{"deployed", "failed", "aborted", "expired", "rolled_back"} {
		if v := before.value(t, "cutover_deployments_total", "production", st); v != 0 {
			t.Errorf("before any deployment cutover_deployments_total{state=%q} = %v, want 0", st, v)
		}
	}
	if v := before.value(t, "cutover_agents_connected", "production"); v != 1 {
		t.Errorf("cutover_agents_connected = %v, want 1", v)
	}

	app := &cutoverv1.Application{}
	c.call(grpcurl, "RegisterApplication", `{"application": {"source_dir": "`+src+`"}}`, app)
	d := &cutoverv1.Deployment{}
	c.call(grpcurl, "CreateDeployment", `{"environment": "production",
		"applications": [{"name": "`+app.GetName()+`", "version_label": "v1"}]}`, d)
	id := d.GetId()
	c.call(grpcurl, "PrepareDeployment", `{"id": "`+id+`"}`, d)
	if d.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING {
		t.Fatalf("PrepareDeployment answered %s, want PREPARING", d.GetState())
	}
	d = c.pollState(grpcurl, id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING, prepared)

	t.Log("between the stages")
	mid := scrape(t, promtool, c.ControllerMetricsAddr)
	for _, check := range []struct {
		name   string
		labels []string
		want   func(float64) bool
	}{
		{"cutover_deployments_prepared", []string{"production"}, func(v float64) bool { return v == 1 }},
		{"cutover_deployments_scheduled", []string{"production"}, func(v float64) bool { return v == 1 }},
		{"cutover_deployment_prepared_next_expiry_timestamp_seconds", []string{"production"},
			func(v float64) bool {
				// The same instant, to the precision a float64 Unix time keeps (µs).
				want := float64(d.GetExpireTime().GetSeconds()) + float64(d.GetExpireTime().GetNanos())/1e9
				return math.Abs(v-want) < 1e-3
			}},
		{"cutover_stage_duration_seconds_count", []string{"production", "build"}, func(v float64) bool { return v == 1 }},
		{"cutover_stage_duration_seconds_count", []string{"production", "transfer"}, func(v float64) bool { return v == 1 }},
		{"cutover_build_duration_seconds_count", []string{"hello"}, func(v float64) bool { return v == 1 }},
		{"cutover_build_duration_seconds_sum", []string{"hello"}, func(v float64) bool { return v > 0 }},
		{"cutover_transfer_bytes_total", []string{"production"}, func(v float64) bool { return v > 0 }},
		{"cutover_transfer_saved_bytes_total", []string{"production"}, func(v float64) bool { return v == 0 }}, // nothing staged before
	} {
		if v := mid.value(t, check.name, check.labels...); !check.want(v) {
			t.Errorf("after prepare %s%q = %v", check.name, check.labels, v)
		}
	}
	if mid.has("cutover_stage_duration_seconds_count", "production", "swap") {
		t.Errorf("a swap duration was observed before stage 2")
	}
	agentMid := scrape(t, promtool, agent.MetricsAddr)
	if v := agentMid.value(t, "cutover_agent_staged_bytes"); v < float64(d.GetAgents()[0].GetReleaseBytes()) {
		t.Errorf("agent staged %v bytes, want at least the release's %d", v, d.GetAgents()[0].GetReleaseBytes())
	}
	if agentMid.has("cutover_agent_last_activation_success", "hello") || agentMid.has("cutover_agent_running_release_info", "hello", releaseOf(t, d)) {
		t.Errorf("the agent reports an activation before stage 2:\n%s", agentMid.grep("cutover_agent_"))
	}

	c.call(grpcurl, "ContinueDeployment", `{"id": "`+id+`"}`, d)
	d = c.pollState(grpcurl, id, cutoverv1.DeploymentState_DEPLOYMENT_STATE_ACTIVATING, deployed)
	c.checkAnswers("v1")

	t.Log("after stage 2")
	// The metrics follow the commit that GetDeployment already sees.
	var after metricsPage
	c.waitFor(10*time.Second, "cutover_deployments_total{state=deployed} 1", func() error {
		after = scrape(t, promtool, c.ControllerMetricsAddr)
		if v, _ := after.find("cutover_deployments_total", "production", "deployed"); v != 1 {
			return fmt.Errorf("it is %v", v)
		}
		return nil
	})
	for _, check := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cutover_deployments_total", []string{"production", "deployed"}, 1},
		{"cutover_deployments_total", []string{"production", "failed"}, 0},
		{"cutover_deployments_prepared", []string{"production"}, 0},
		{"cutover_deployment_prepared_next_expiry_timestamp_seconds", []string{"production"}, 0},
		{"cutover_stage_duration_seconds_count", []string{"production", "sql"}, 1},
		{"cutover_stage_duration_seconds_count", []string{"production", "swap"}, 1},
		{"cutover_stage_duration_seconds_count", []string{"production", "build"}, 1},
	} {
		if v := after.value(t, check.name, check.labels...); v != check.want {
			t.Errorf("after continue %s%q = %v, want %v", check.name, check.labels, v, check.want)
		}
	}
	agentAfter := scrape(t, promtool, agent.MetricsAddr)
	if v := agentAfter.value(t, "cutover_agent_running_release_info", "hello", releaseOf(t, d)); v != 1 {
		t.Errorf("cutover_agent_running_release_info = %v, want 1", v)
	}
	if v := agentAfter.value(t, "cutover_agent_last_activation_success", "hello"); v != 1 {
		t.Errorf("cutover_agent_last_activation_success = %v, want 1", v)
	}
	if t.Failed() {
		t.Logf("controller:\n%s\nagent:\n%s", after.grep("cutover_"), agentAfter.grep("cutover_"))
	}

	// Every log line about a deployment names its environment too.
	for _, p := range c.Procs() {
		b, err := os.ReadFile(p.Log)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, " deployment="+id) {
				continue
			}
			n++
			if !strings.Contains(line, " environment=production") {
				t.Errorf("%s logged a line about %s without its environment:\n%s", p.Name, id, line)
			}
		}
		if n == 0 {
			t.Errorf("%s logged nothing about %s", p.Name, id)
		}
	}
}

// metricsPage is a scraped /metrics page in the text format.
type metricsPage string

// scrape fetches http://addr/metrics and checks it with `promtool check
// metrics` (which also lints names, units and help texts).
func scrape(t *testing.T, promtool, addr string) metricsPage {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s, %v", addr, resp.Status, err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on %s: %v\n%s", addr, err, out)
	}
	return metricsPage(body)
}

// find returns the value of the series of metric name whose label values
// are labels, in the order the page shows them.
func (p metricsPage) find(name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(string(p), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		metric, rest, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		var got []string
		for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			if _, v, ok := strings.Cut(kv, "="); ok {
				got = append(got, strings.Trim(v, `"`))
			}
		}
		if strings.Join(got, ",") != strings.Join(labels, ",") {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		return f, err == nil
	}
	return 0, false
}

// has reports whether the page holds the series.
func (p metricsPage) has(name string, labels ...string) bool {
	_, ok := p.find(name, labels...)
	return ok
}

// value returns the series' value, failing the test if the page lacks it.
func (p metricsPage) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := p.find(name, labels...)
	if !ok {
		t.Fatalf("/metrics lacks %s%q:\n%s", name, labels, p.grep(name))
	}
	return v
}

// grep returns the page's lines that contain s.
func (p metricsPage) grep(s string) string {
	var out []string
	for _, line := range strings.Split(string(p), "\n") {
		if strings.Contains(line, s) && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
