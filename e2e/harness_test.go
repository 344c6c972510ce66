package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// Deadlines for the conditions the tests wait on.
const (
	pollEvery       = 50 * time.Millisecond
	startDeadline   = 30 * time.Second
	deployDeadline  = 60 * time.Second
	stopGrace       = 10 * time.Second
	rpcTimeout      = 10 * time.Second
	logTailOnFailed = 40
)

// proc is one process started by a test, its output in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startProc starts bin with args in its own process group, its output in
// dir/<name>.log, and arranges for it to be stopped when the test ends.
func startProc(t *testing.T, dir, name, binary string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- last lines of %s:\n%s", logPath, tail(logPath, logTailOnFailed))
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the process group and waits for the process.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM, waits up to stopGrace, then kills.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		p.kill()
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// killStrays kills every process whose working directory lies under dir:
// app processes an agent left behind when it was killed.
func killStrays(dir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && (cwd == dir || strings.HasPrefix(cwd, dir+"/")) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every pollEvery until it returns nil or deadline
// passes, then fails the test with what and cond's last error.
func waitFor(t *testing.T, deadline time.Duration, what string, cond func() error) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s: %v", what, deadline, err)
		}
		time.Sleep(pollEvery)
	}
}

// agent is one started cutover-agent.
type agent struct {
	name, root, dataDir string
	port                int
	proc                *proc
}

// cluster is one controller and its agents, all in one temporary directory.
type cluster struct {
	t          *testing.T
	dir        string
	addr       string
	controller *proc
	agents     []*agent
	admin      cutoverv1.AdminServiceClient
	health     healthpb.HealthClient
}

// newCluster starts a controller on a free loopback port and waits until
// it serves.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	// Registered before any process, so it runs after every proc's stop.
	t.Cleanup(func() { killStrays(dir) })
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(boundedCall))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.admin = cutoverv1.NewAdminServiceClient(conn)
	c.health = healthpb.NewHealthClient(conn)
	c.startController()
	return c
}

// startController starts the controller on c.addr with its data dir and
// waits for its gRPC health check to answer SERVING.
func (c *cluster) startController() {
	c.t.Helper()
	c.controller = startProc(c.t, c.dir, "controller", bin("cutover-controller"),
		"--data-dir", filepath.Join(c.dir, "controller"),
		"--listen", c.addr,
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", freePort(c.t)),
		"--log-level", "debug",
	)
	waitFor(c.t, startDeadline, "controller serving on "+c.addr, func() error {
		if c.controller.exited() {
			c.t.Fatalf("controller exited: %v\n%s", c.controller.err, tail(c.controller.log, logTailOnFailed))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health %s", resp.GetStatus())
		}
		return nil
	})
}

// restartController kills the controller with SIGKILL and starts it again
// on the same data dir and address.
func (c *cluster) restartController() {
	c.t.Helper()
	c.controller.kill()
	c.startController()
}

// startAgents starts one agent per name in environment env, each with its
// own data dir, root and PORT, and waits until the controller lists them
// connected.
func (c *cluster) startAgents(env string, names ...string) {
	c.t.Helper()
	for _, name := range names {
		a := &agent{
			name:    name,
			root:    filepath.Join(c.dir, name, "root"),
			dataDir: filepath.Join(c.dir, name, "data"),
			port:    freePort(c.t),
		}
		a.proc = startProc(c.t, c.dir, name, bin("cutover-agent"),
			"--controller", c.addr,
			"--environment", env,
			"--name", name,
			"--data-dir", a.dataDir,
			"--root", a.root,
			"--env", fmt.Sprintf("PORT=%d", a.port),
			"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", freePort(c.t)),
		)
		c.agents = append(c.agents, a)
	}
	c.waitAgentsConnected(env)
}

// waitAgentsConnected waits until ListAgents shows every agent of c connected.
func (c *cluster) waitAgentsConnected(env string) {
	c.t.Helper()
	waitFor(c.t, startDeadline, "agents connected", func() error {
		for _, a := range c.agents {
			if a.proc.exited() {
				c.t.Fatalf("agent %s exited: %v\n%s", a.name, a.proc.err, tail(a.proc.log, logTailOnFailed))
			}
		}
		resp, err := c.admin.ListAgents(context.Background(), &cutoverv1.ListAgentsRequest{Environment: env})
		if err != nil {
			return err
		}
		connected := map[string]bool{}
		for _, a := range resp.GetAgents() {
			connected[a.GetName()] = a.GetConnected()
		}
		for _, a := range c.agents {
			if !connected[a.name] {
				return fmt.Errorf("agent %s is not connected (ListAgents: %v)", a.name, resp.GetAgents())
			}
		}
		return nil
	})
}

// boundedCall gives every request without a deadline one of rpcTimeout.
func boundedCall(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// waitDeployment polls GetDeployment until the deployment is in want or in a
// final state other than want, and fails the test unless it is in want.
func (c *cluster) waitDeployment(id string, want cutoverv1.DeploymentState) *cutoverv1.Deployment {
	c.t.Helper()
	var d *cutoverv1.Deployment
	waitFor(c.t, deployDeadline, fmt.Sprintf("deployment %s %s", id, want), func() error {
		var err error
		d, err = c.admin.GetDeployment(context.Background(), &cutoverv1.GetDeploymentRequest{Id: id})
		if err != nil {
			return err
		}
		if d.GetState() == want || isFinal(d.GetState()) {
			return nil
		}
		return fmt.Errorf("still %s", d.GetState())
	})
	if d.GetState() != want {
		c.t.Fatalf("deployment %s ended %s, want %s:\n%s", id, d.GetState(), want, asJSON(d))
	}
	return d
}

// isFinal reports whether a deployment never leaves state s.
func isFinal(s cutoverv1.DeploymentState) bool {
	switch s {
	case cutoverv1.DeploymentState_DEPLOYMENT_STATE_DEPLOYED,
		cutoverv1.DeploymentState_DEPLOYMENT_STATE_FAILED,
		cutoverv1.DeploymentState_DEPLOYMENT_STATE_ABORTED,
		cutoverv1.DeploymentState_DEPLOYMENT_STATE_EXPIRED,
		cutoverv1.DeploymentState_DEPLOYMENT_STATE_ROLLED_BACK:
		return true
	}
	return false
}

// asJSON renders m for failure messages.
func asJSON(m proto.Message) string {
	return protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Format(m)
}

// ctl runs the real cutoverctl against the cluster's controller.
func (c *cluster) ctl(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	return runCtl(c.t, append([]string{"--controller", c.addr}, args...), nil)
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

// answer asks the app on port for its version.
func answer(port int) (string, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET / on port %d: %s", port, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// checkAnswers fails the test unless every agent's app answers version now.
func (c *cluster) checkAnswers(version string) {
	c.t.Helper()
	for _, a := range c.agents {
		got, err := answer(a.port)
		if err != nil || got != version {
			c.t.Errorf("agent %s: app answers %q (%v), want %q", a.name, got, err, version)
		}
	}
}

// checkCurrent fails the test unless every agent's ROOT/app/current points
// to the release releaseID.
func (c *cluster) checkCurrent(app, releaseID string) {
	c.t.Helper()
	for _, a := range c.agents {
		link := filepath.Join(a.root, app, "current")
		target, err := os.Readlink(link)
		if err != nil {
			c.t.Errorf("agent %s: %v", a.name, err)
			continue
		}
		if filepath.Base(target) != releaseID {
			c.t.Errorf("agent %s: %s -> %s, want the release %s", a.name, link, target, releaseID)
		}
	}
}

// copyApp copies the example application at src (without build output) to
// dst and writes version into its VERSION file.
func copyApp(t *testing.T, src, dst, version string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if d.Name() == "bin" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
	writeVersion(t, dst, version)
}

// writeVersion sets the VERSION file of the app source in dir.
func writeVersion(t *testing.T, dir, version string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(version+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
