package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/process"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/poll"
)

func TestNewRefusesBadConfig(t *testing.T) {
	good := func() Config {
		return Config{Environment: "prod", Name: "fe-1", DataDir: t.TempDir(), Root: t.TempDir()}
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no environment", func(c *Config) { c.Environment = "" }, "--environment is required"},
		{"bad environment", func(c *Config) { c.Environment = "Prod!" }, "--environment"},
		{"bad name", func(c *Config) { c.Name = "fe_1" }, "--name"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "--data-dir is required"},
		{"no root", func(c *Config) { c.Root = "" }, "--root is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.change(&cfg)
			_, err := New(cfg)
			if !errors.Is(err, errkind.InvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want InvalidArgument mentioning %q", err, tt.want)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := poll.True(context.Background(), 10*time.Second, what, cond); err != nil {
		t.Fatal(err)
	}
}

// TestRunStartsAppsServesMetricsAndStopsCleanly runs an agent whose
// controller is not there: it starts the app `current` points to, serves
// /metrics, and on cancel stops the app and releases the store.
func TestRunStartsAppsServesMetricsAndStopsCleanly(t *testing.T) {
	dataDir, root := t.TempDir(), t.TempDir()
	spec := appspec.Spec{Name: "hello", Run: appspec.Run{Command: `echo $$ > "$PIDFILE"; exec sleep 100`}}
	m := &manifest.Manifest{Application: "hello", Spec: spec}
	b := m.Encode()
	id := manifest.ReleaseID(b)
	st, err := store.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(func(tx *store.Tx) error {
		return tx.PutRelease(&store.Release{Application: "hello", ID: id, Manifest: b, State: store.ReleaseStaged})
	})
	_ = st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(layout.ReleaseDir(root, "hello", id), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(layout.CurrentTarget(id), layout.CurrentPath(root, "hello")); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	metrics := freeAddr(t)
	enrolled(t, dataDir)
	a, err := New(Config{Controller: freeAddr(t), Environment: "prod", Name: "fe-1", DataDir: dataDir, Root: root,
		Env: map[string]string{"PIDFILE": pidFile}, MetricsListen: metrics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	var pid int
	waitFor(t, "the app to start", func() bool {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	var body string
	waitFor(t, "/metrics", func() bool {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	for _, name := range []string{"cutover_agent_staged_bytes", "cutover_agent_controller_connected", "go_goroutines", "process_open_fds",
		`cutover_agent_running_release_info{application="hello",release="` + id + `"} 1`} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if strings.Contains(body, "cutover_agent_last_activation_success") {
		t.Errorf("/metrics has cutover_agent_last_activation_success before any activation:\n%s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The app outlives the agent; the next agent adopts it, not restarts it.
	runDir := filepath.Join(dataDir, "run")
	t.Cleanup(func() { _ = process.KillRecorded(context.Background(), runDir) })
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("app pid %d gone after the agent stopped", pid)
	}
	a, err = New(Config{Controller: freeAddr(t), Environment: "prod", Name: "fe-1", DataDir: dataDir, Root: root,
		Env: map[string]string{"PIDFILE": pidFile}, MetricsListen: metrics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "/metrics of the second agent", func() bool {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	if info, ok := a.procs.Info("hello"); !ok || info.PID != pid || !info.Adopted {
		t.Errorf("second agent runs %+v, %v; want pid %d adopted", info, ok, pid)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := process.KillRecorded(context.Background(), runDir); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("app pid %d alive after KillRecorded", pid)
	}
	st, err = store.Open(dataDir) // released, not locked
	if err != nil {
		t.Fatalf("store after stop: %v", err)
	}
	_ = st.Close()
}
