package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/poll"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// deployDeadline bounds the wait for a deployment to reach a state. It is
// generous because the first build of hello on a cold Go build cache
// compiles part of the standard library; a warm run needs seconds.
const deployDeadline = 2 * time.Minute

// cluster is a localcluster.Cluster that fails its test on errors and
// stops every process when the test ends.
type cluster struct {
	*localcluster.Cluster
	t   *testing.T
	dir string
}

// newCluster starts a controller in a fresh temporary directory, with
// extra flags if given.
func newCluster(t *testing.T, controllerArgs ...string) *cluster {
	t.Helper()
	return newClusterWith(t, localcluster.Config{ControllerArgs: controllerArgs})
}

// newClusterWith starts a cluster as newCluster does, with cfg's options
// (its Dir is the test's; its BinDir too, unless set).
func newClusterWith(t *testing.T, cfg localcluster.Config) *cluster {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The test's temporary directories (its app sources among them) share one parent: the source root.
	cfg.Dir = dir
	if cfg.BinDir == "" {
		cfg.BinDir = binDir
	}
	cfg.ControllerArgs = append([]string{"--log-level", "debug", "--source-root", filepath.Dir(dir)}, cfg.ControllerArgs...)
	lc, err := localcluster.Start(context.Background(), cfg)
	c := &cluster{Cluster: lc, t: t, dir: dir}
	t.Cleanup(func() {
		lc.Close()
		if t.Failed() {
			for _, p := range lc.Procs() {
				t.Logf("--- last lines of %s:\n%s", p.Log, p.Tail(40))
			}
		}
	})
	if err != nil {
		t.Fatalf("start controller: %v", err)
	}
	return c
}

// startAgents starts agents of env and waits until they are connected.
func (c *cluster) startAgents(env string, names ...string) {
	c.t.Helper()
	if err := c.StartAgents(context.Background(), env, names...); err != nil {
		c.t.Fatalf("start agents: %v", err)
	}
}

// waitAgentsConnected waits until every agent is connected again.
func (c *cluster) waitAgentsConnected(env string) {
	c.t.Helper()
	if err := c.WaitAgentsConnected(context.Background(), env); err != nil {
		c.t.Fatal(err)
	}
}

// restartController kills the controller with SIGKILL and starts it again.
func (c *cluster) restartController() {
	c.t.Helper()
	if err := c.RestartController(context.Background()); err != nil {
		c.t.Fatalf("restart controller: %v", err)
	}
}

// waitFor polls cond until it returns nil, failing the test after deadline.
func (c *cluster) waitFor(deadline time.Duration, what string, cond func() error) {
	c.t.Helper()
	if err := poll.Until(context.Background(), deadline, cond); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

// waitDeployment polls GetDeployment until the deployment is in want or in a
// final state, and fails the test unless it is in want.
func (c *cluster) waitDeployment(id string, want cutoverv1.DeploymentState) *cutoverv1.Deployment {
	c.t.Helper()
	d := c.waitSettled(id, want)
	if d.GetState() != want {
		c.t.Fatalf("deployment %s ended %s, want %s:\n%s", id, d.GetState(), want, asJSON(d))
	}
	return d
}

// waitSettled polls GetDeployment until the deployment is in want or in a
// final state, and returns it.
func (c *cluster) waitSettled(id string, want cutoverv1.DeploymentState) *cutoverv1.Deployment {
	c.t.Helper()
	var d *cutoverv1.Deployment
	c.waitFor(deployDeadline, fmt.Sprintf("deployment %s %s", id, want), func() error {
		var err error
		d, err = c.Admin.GetDeployment(context.Background(), &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil {
			return err
		}
		if d.GetState() == want || d.GetState().Final() {
			return nil
		}
		return fmt.Errorf("still %s", d.GetState())
	})
	return d
}

// createEnv creates environment name with a SQLite database in the
// cluster's directory (NAME.db): examples/hello has a migration, which
// needs one.
func (c *cluster) createEnv(name string, twoStage bool) {
	c.t.Helper()
	c.createEnvWithDB(name, twoStage, &cutoverv1.Database{Driver: "sqlite", Dsn: filepath.Join(c.dir, name+".db")})
}

// createEnvWithDB creates environment name with the database db.
func (c *cluster) createEnvWithDB(name string, twoStage bool, db *cutoverv1.Database) {
	c.t.Helper()
	if _, err := c.Admin.CreateEnvironment(context.Background(), &cutoverv1.CreateEnvironmentRequest{
		Environment: &cutoverv1.Environment{Name: name, TwoStage: twoStage, Database: db},
	}); err != nil {
		c.t.Fatalf("CreateEnvironment(%s): %v", name, err)
	}
}

// registerApp registers the application source in dir and returns its name.
func (c *cluster) registerApp(dir string) string {
	c.t.Helper()
	app, err := c.Admin.RegisterApplication(context.Background(), &cutoverv1.RegisterApplicationRequest{
		Application: &cutoverv1.Application{SourceDir: dir},
	})
	if err != nil {
		c.t.Fatalf("RegisterApplication(%s): %v", dir, err)
	}
	return app.GetName()
}

// asJSON renders m for failure messages.
func asJSON(m proto.Message) string {
	return protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Format(m)
}

// ctl runs the real cutoverctl against the cluster's controller.
func (c *cluster) ctl(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	return runCtl(c.t, append([]string{"--controller", c.Addr}, args...), c.CtlEnv())
}

// runCtl runs the real cutoverctl with args and extra environment.
func runCtl(t *testing.T, args []string, env []string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deployDeadline)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin("cutoverctl"), args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run cutoverctl %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// checkAnswers fails the test unless every agent's app answers version now.
func (c *cluster) checkAnswers(version string) {
	c.t.Helper()
	for _, a := range c.Agents {
		got, err := localcluster.Answer(a.Port)
		if err != nil || got != version {
			c.t.Errorf("agent %s: app answers %q (%v), want %q", a.Name, got, err, version)
		}
	}
}

// checkCurrent fails the test unless every agent's ROOT/app/current points
// to the release releaseID.
func (c *cluster) checkCurrent(app, releaseID string) {
	c.t.Helper()
	for _, a := range c.Agents {
		link := filepath.Join(a.Root, app, "current")
		target, err := os.Readlink(link)
		if err != nil {
			c.t.Errorf("agent %s: %v", a.Name, err)
			continue
		}
		if filepath.Base(target) != releaseID {
			c.t.Errorf("agent %s: %s -> %s, want the release %s", a.Name, link, target, releaseID)
		}
	}
}

// copyApp copies examples/hello to dst with the given VERSION.
func copyApp(t *testing.T, dst, version string) {
	t.Helper()
	if err := localcluster.CopyApp(filepath.Join("..", "examples", "hello"), dst, version); err != nil {
		t.Fatal(err)
	}
}

// writeVersion sets the VERSION file of the app source in dir.
func writeVersion(t *testing.T, dir, version string) {
	t.Helper()
	if err := localcluster.WriteVersion(dir, version); err != nil {
		t.Fatal(err)
	}
}
