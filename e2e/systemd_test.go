package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/internal/localcluster"
	"github.com/cutover-dev/cutover/pkg/sdnotify/sdnotifytest"
	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// TestDaemonsUnderSystemd starts each real daemon as systemd would with
// Type=notify and WatchdogSec=: with the example config file of deploy/config
// (so the test also proves that the daemon's flags accept every key of it),
// only the paths, addresses and the agent's join token (from a controller
// started for it) overridden by flags (metrics off: no port
// that another test's FreePort may have handed out), NOTIFY_SOCKET pointing
// at a socket the test listens on and WATCHDOG_USEC set. It waits for
// READY=1 and WATCHDOG=1, sends SIGTERM, and waits for STOPPING=1 and a
// clean exit.
func TestDaemonsUnderSystemd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		daemon string
		args   func(t *testing.T, dir string) []string
	}{
		{"cutover-controller", func(_ *testing.T, dir string) []string {
			return []string{"--config", filepath.Join("..", "deploy", "config", "controller.yaml"),
				"--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--metrics-listen", ""}
		}},
		{"cutover-agent", func(t *testing.T, dir string) []string {
			// The agent enrolls with a controller started for the test,
			// with a join token in place of the example config's.
			c := newCluster(t)
			joinToken := filepath.Join(dir, "join.token")
			if err := c.WriteJoinToken(t.Context(), "production", "fe-notify", joinToken); err != nil {
				t.Fatal(err)
			}
			return []string{"--config", filepath.Join("..", "deploy", "config", "agent.yaml"),
				"--controller", c.Addr, "--name", "fe-notify", "--join-token-file", joinToken,
				"--data-dir", filepath.Join(dir, "data"), "--root", filepath.Join(dir, "root"), "--metrics-listen", ""}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.daemon, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sock := sdnotifytest.Listen(t)
			var out strings.Builder
			cmd := exec.Command(bin(tt.daemon), tt.args(t, dir)...)
			cmd.Env = append(os.Environ(), sock.Env(), "WATCHDOG_USEC=200000")
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("%s's output:\n%s", tt.daemon, out.String())
				}
			})

			got := sock.WaitFor(t, "READY=1", localcluster.StartTimeout)
			if !strings.Contains(strings.Join(got, "\n"), "WATCHDOG=1") {
				sock.WaitFor(t, "WATCHDOG=1", 5*time.Second)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			sock.WaitFor(t, "STOPPING=1", 10*time.Second)
			select {
			case err := <-exited:
				exited <- err // for the cleanup
				if err != nil {
					t.Fatalf("%s exited with %v after SIGTERM, want 0", tt.daemon, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s did not exit within 30s of SIGTERM", tt.daemon)
			}
		})
	}
}

// TestSIGTERMDuringPrepare stops the controller with SIGTERM (as systemctl
// stop does) while a deployment is PREPARING: it exits 0, and the
// controller started again on the same data dir resumes the deployment to
// PREPARED; nothing is lost or left half-done.
func TestSIGTERMDuringPrepare(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	src := filepath.Join(c.dir, "src")
	copyApp(t, src, "v1")
	c.createEnv("stop", true)
	c.startAgents("stop", "fe-term")
	app := c.registerApp(src)
	id := c.createDeployment("stop", app, "v1")
	d, err := c.Admin.PrepareDeployment(t.Context(), &cutoverv1.PrepareDeploymentRequest{Id: id})
	if err != nil || d.GetState() != cutoverv1.DeploymentState_DEPLOYMENT_STATE_PREPARING {
		t.Fatalf("PrepareDeployment: %v, %v", d.GetState(), err)
	}
	// SIGTERM to the controller alone, as systemd's KillMode=mixed sends it:
	// the controller itself must end the builds it runs.
	if err := syscall.Kill(c.Controller.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.waitFor(30*time.Second, "the controller to exit after SIGTERM", func() error {
		if ended, _ := c.Controller.Exited(); !ended {
			return fmt.Errorf("still running")
		}
		return nil
	})
	if _, err := c.Controller.Exited(); err != nil {
		t.Fatalf("controller after SIGTERM: %v; want exit 0", err)
	}
	if log := c.Controller.Tail(5); !strings.Contains(log, "cutover-controller stopping") {
		t.Errorf("the controller's log does not say it stopped:\n%s", log)
	}
	c.restartController()
	c.waitAgentsConnected("stop")
	d = c.waitDeployment(id, prepared)
	if a := d.GetAgents(); len(a) != 1 || a[0].GetState() != cutoverv1.AgentDeploymentState_AGENT_DEPLOYMENT_STATE_STAGED {
		t.Errorf("agents after the resumed prepare: %v", a)
	}
}
