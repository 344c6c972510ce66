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

	"github.com/cutover-dev/cutover/e2e/localcluster"
	"github.com/cutover-dev/cutover/pkg/sdnotify/sdnotifytest"
)

// TestDaemonsUnderSystemd starts each real daemon as systemd would with
// Type=notify and WatchdogSec=: with the example config file of deploy/config
// (so the test also proves that the daemon's flags accept every key of it),
// only the paths and addresses overridden by flags (metrics off: no port
// that another test's FreePort may have handed out), NOTIFY_SOCKET pointing
// at a socket the test listens on and WATCHDOG_USEC set. It waits for
// READY=1 and WATCHDOG=1, sends SIGTERM, and waits for STOPPING=1 and a
// clean exit.
func TestDaemonsUnderSystemd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		daemon string
		args   func(dir string) []string
	}{
		{"cutover-controller", func(dir string) []string {
			return []string{"--config", filepath.Join("..", "deploy", "config", "controller.yaml"),
				"--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--metrics-listen", ""}
		}},
		{"cutover-agent", func(dir string) []string {
			// No controller answers there: the agent serves (and is ready)
			// without one, and keeps trying to connect.
			port, err := localcluster.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			return []string{"--config", filepath.Join("..", "deploy", "config", "agent.yaml"),
				"--controller", fmt.Sprintf("127.0.0.1:%d", port), "--name", "fe-notify",
				"--data-dir", filepath.Join(dir, "data"), "--root", filepath.Join(dir, "root"), "--metrics-listen", ""}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.daemon, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sock := sdnotifytest.Listen(t)
			var out strings.Builder
			cmd := exec.Command(bin(tt.daemon), tt.args(dir)...)
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
