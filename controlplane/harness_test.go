package controlplane

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// testController is a real controller on 127.0.0.1:0 with a client.
type testController struct {
	addr    string
	dataDir string
	ca      *x509.CertPool
	ctl     *Controller
	admin   cutoverv1.AdminServiceClient
	cancel  context.CancelFunc
	done    chan error
}

func startController(t *testing.T, dataDir string) *testController {
	t.Helper()
	return startControllerWithClock(t, dataDir, nil)
}

// startControllerWithClock starts a controller whose clock is clock (nil:
// the real one).
func startControllerWithClock(t *testing.T, dataDir string, clock func() time.Time) *testController {
	t.Helper()
	return startControllerWith(t, dataDir, func(cfg *Config) { cfg.Clock = clock })
}

// startControllerWith starts a controller with the test's configuration
// changed by mod.
func startControllerWith(t *testing.T, dataDir string, mod func(*Config)) *testController {
	t.Helper()
	cfg := Config{DataDir: dataDir, Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", StopTimeout: 5 * time.Second,
		SourceRoots: []string{os.TempDir()}}
	mod(&cfg)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tc := &testController{addr: c.Addr().String(), dataDir: dataDir, ca: caPool(t, dataDir), ctl: c, cancel: cancel, done: make(chan error, 1)}
	go func() { tc.done <- c.Run(ctx) }()
	controllers.Store(tc.addr, tc)
	tc.admin = tc.as(t, "alice", cutoverv1.Role_ROLE_ADMIN)
	t.Cleanup(func() { tc.stop(t) })
	return tc
}

// stop stops the controller and waits for Run to return (store closed).
func (tc *testController) stop(t *testing.T) {
	if tc.cancel == nil {
		return
	}
	tc.cancel()
	tc.cancel = nil
	select {
	case err := <-tc.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("controller did not stop within 10s")
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// writeApp writes an application source directory and returns it.
func writeApp(t *testing.T, name, buildCmd string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := "name: " + name + "\nbuild:\n  command: " + buildCmd + "\n  output: .\nrun:\n  command: ./run.sh\n"
	for file, body := range map[string]string{"cutover.yaml": spec, "VERSION": "v2\n", "run.sh": "#!/bin/sh\nexec sleep 1000\n"} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// setup creates an environment and an application, and returns a planned deployment.
func setup(t *testing.T, tc *testController, env string, twoStage bool, app, buildCmd string) *cutoverv1.Deployment {
	t.Helper()
	c := ctx(t)
	if _, err := tc.admin.CreateEnvironment(c, &cutoverv1.CreateEnvironmentRequest{Environment: &cutoverv1.Environment{Name: env, TwoStage: twoStage}}); err != nil && status.Code(err) != codes.AlreadyExists {
		t.Fatal(err)
	}
	if _, err := tc.admin.RegisterApplication(c, &cutoverv1.RegisterApplicationRequest{Application: &cutoverv1.Application{SourceDir: writeApp(t, app, buildCmd)}}); err != nil {
		t.Fatal(err)
	}
	d, err := tc.admin.CreateDeployment(c, &cutoverv1.CreateDeploymentRequest{Environment: env,
		Applications: []*cutoverv1.ApplicationVersion{{Name: app, VersionLabel: "v2"}}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// startDeployed runs both stages of deployment id (start) and waits for
// DEPLOYED.
func startDeployed(t *testing.T, tc *testController, id string) *cutoverv1.Deployment {
	t.Helper()
	if _, err := tc.admin.StartDeployment(ctx(t), &cutoverv1.StartDeploymentRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	return waitFor(t, tc, id, "DEPLOYED", inState(cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED))
}

// createVersion writes version into app's VERSION file, so that it builds
// another release, and plans a deployment of it, labelled version, to env.
func createVersion(t *testing.T, tc *testController, env, app, version string) *cutoverv1.Deployment {
	t.Helper()
	a, err := tc.admin.GetApplication(ctx(t), &cutoverv1.GetApplicationRequest{Name: app})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.SourceDir, "VERSION"), []byte(version+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := tc.admin.CreateDeployment(ctx(t), &cutoverv1.CreateDeploymentRequest{Environment: env,
		Applications: []*cutoverv1.ApplicationVersion{{Name: app, VersionLabel: version}}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitFor polls until cond holds for the deployment, or fails after 20s.
func waitFor(t *testing.T, tc *testController, id string, what string, cond func(*cutoverv1.Deployment) bool) *cutoverv1.Deployment {
	t.Helper()
	var d *cutoverv1.Deployment
	err := poll.Until(context.Background(), 20*time.Second, func() error {
		var err error
		if d, err = tc.admin.GetDeployment(ctx(t), &cutoverv1.GetDeploymentRequest{Id: id}); err == nil && !cond(d) {
			err = fmt.Errorf("%s did not happen; last: %v", what, d)
		}
		return err
	})
	if err != nil {
		t.Fatalf("deployment %s: %v", id, err)
	}
	return d
}

func inState(s cutoverv1.DeploymentState) func(*cutoverv1.Deployment) bool {
	return func(d *cutoverv1.Deployment) bool { return d.State == s }
}

// waitAgents waits until n agents of env are connected.
func waitAgents(t *testing.T, tc *testController, env string, n int) {
	t.Helper()
	err := poll.Until(context.Background(), 20*time.Second, func() error {
		resp, err := tc.admin.ListAgents(ctx(t), &cutoverv1.ListAgentsRequest{Environment: env})
		connected := 0
		for _, a := range resp.GetAgents() {
			if a.Connected {
				connected++
			}
		}
		if err == nil && connected != n {
			err = fmt.Errorf("%d agents of %s connected, want %d", connected, env, n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitReceived waits until the agent received a command described as want.
func waitReceived(t *testing.T, a *fakeAgent, want string) {
	t.Helper()
	err := poll.True(context.Background(), 20*time.Second, "agent "+a.name+" receives "+want, func() bool { return slices.Contains(a.received(), want) })
	if err != nil {
		t.Fatalf("%v; got %v", err, a.received())
	}
}

// fakeClock is a clock that moves only when a test moves it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

// Now is the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// tick moves the fake clock to t and runs the controller's timers at once.
func (tc *testController) tick(clock *fakeClock, t time.Time) {
	clock.Set(t)
	tc.ctl.deps.Tick()
}

// scrape returns the controller's /metrics page.
func (tc *testController) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + tc.ctl.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// scrapeUntil scrapes the controller's /metrics until the page holds line,
// and returns that page; it fails the test after 10 s.
func (tc *testController) scrapeUntil(t *testing.T, line string) string {
	t.Helper()
	var m string
	if err := poll.True(context.Background(), 10*time.Second, "/metrics holds "+line, func() bool {
		m = tc.scrape(t)
		return strings.Contains(m, "\n"+line+"\n")
	}); err != nil {
		t.Fatalf("%v:\n%s", err, m)
	}
	return m
}
