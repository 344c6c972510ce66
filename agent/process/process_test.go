package process

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/poll"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := poll.True(context.Background(), 10*time.Second, what, cond); err != nil {
		t.Fatal(err)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func TestStartGivesDirAndEnv(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{Env: map[string]string{"PORT": "1234"}, LogDir: filepath.Join(dir, "logs")})
	err := s.Start(Spec{Application: "hello", Release: "r1", Dir: dir, StopGrace: time.Second,
		Command: `echo "$PWD $PORT $CUTOVER_APP $CUTOVER_RELEASE_ID" > out; echo to-log; exec sleep 100`})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	waitFor(t, "out file", func() bool { return strings.HasSuffix(readFile(out), "\n") })
	if got, want := readFile(out), dir+" 1234 hello r1\n"; got != want {
		t.Errorf("out = %q, want %q", got, want)
	}
	waitFor(t, "app log", func() bool { return strings.Contains(readFile(filepath.Join(dir, "logs", "hello.log")), "to-log") })
	info, ok := s.Info("hello")
	if !ok || info.Release != "r1" || info.PID == 0 {
		t.Fatalf("Info = %+v, %v", info, ok)
	}
	if err := s.Start(Spec{Application: "hello", Dir: dir, Command: "true"}); err == nil {
		t.Error("second Start of a running app succeeded")
	}
	if err := s.Stop(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	if alive(info.PID) {
		t.Errorf("pid %d still alive after Stop", info.PID)
	}
	if _, ok := s.Info("hello"); ok {
		t.Error("Info after Stop: still supervised")
	}
	if err := s.Stop(context.Background(), "hello"); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStopSendsSIGKILLAfterGrace(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{})
	const grace = 300 * time.Millisecond
	err := s.Start(Spec{Application: "stubborn", Release: "r1", Dir: dir, StopGrace: grace,
		Command: `trap "" TERM; echo $$ > pid; sleep 100`})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pid file", func() bool { return strings.HasSuffix(readFile(filepath.Join(dir, "pid")), "\n") })
	info, _ := s.Info("stubborn")
	start := time.Now()
	if err := s.Stop(context.Background(), "stubborn"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < grace {
		t.Errorf("Stop took %v, less than the grace period %v: SIGTERM was not ignored?", took, grace)
	}
	if alive(info.PID) {
		t.Errorf("pid %d alive after SIGKILL", info.PID)
	}
}

func TestStopKillsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{})
	// The child sleeps in the background: only a group signal reaches it.
	err := s.Start(Spec{Application: "tree", Dir: dir, StopGrace: 5 * time.Second,
		Command: `sleep 100 & echo $! > child; wait`})
	if err != nil {
		t.Fatal(err)
	}
	childFile := filepath.Join(dir, "child")
	waitFor(t, "child pid", func() bool { return strings.HasSuffix(readFile(childFile), "\n") })
	var child int
	for _, c := range strings.TrimSpace(readFile(childFile)) {
		child = child*10 + int(c-'0')
	}
	if err := s.Stop(context.Background(), "tree"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "child gone", func() bool { return !alive(child) || zombie(child) })
}

// zombie reports whether pid has exited but was not reaped yet (its parent
// was killed and init has not reaped it).
func zombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

func TestCrashedAppIsRestarted(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{RestartBackoff: 10 * time.Millisecond, MaxRestartBackoff: 40 * time.Millisecond})
	err := s.Start(Spec{Application: "crashy", Dir: dir, Command: `echo run >> runs; exit 3`})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three runs", func() bool { return strings.Count(readFile(filepath.Join(dir, "runs")), "run") >= 3 })
	info, _ := s.Info("crashy")
	if info.Restarts < 2 {
		t.Errorf("Restarts = %d, want >= 2", info.Restarts)
	}
	if err := s.StopAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if apps := s.Applications(); len(apps) != 0 {
		t.Errorf("Applications after StopAll = %v", apps)
	}
}

func TestStartInMissingDirFails(t *testing.T) {
	s := New(Config{})
	err := s.Start(Spec{Application: "x", Dir: filepath.Join(t.TempDir(), "nope"), Command: "true"})
	if err == nil {
		t.Fatal("Start in a missing dir succeeded")
	}
	if _, ok := s.Info("x"); ok {
		t.Error("failed Start left the app supervised")
	}
}

func TestStopHonoursContext(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{})
	if err := s.Start(Spec{Application: "slow", Dir: dir, StopGrace: time.Second, Command: `trap "" TERM; touch ready; sleep 100`}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "trap set", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Stop(ctx, "slow"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop with a cancelled ctx = %v, want context.Canceled", err)
	}
	// The stop goes on in the background: a new start must wait for it…
	if err := s.Start(Spec{Application: "slow", Dir: dir, Command: "exec sleep 100"}); err == nil {
		t.Error("Start while the old process is still stopping succeeded")
	}
	// …and StopAll waits for it to be gone.
	if err := s.StopAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(Spec{Application: "slow", Dir: dir, Command: "exec sleep 100"}); err != nil {
		t.Errorf("Start after StopAll: %v", err)
	}
	_ = s.StopAll(context.Background())
}

func TestRestartReplaces(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{})
	for _, rel := range []string{"r1", "r2"} {
		if err := s.Restart(context.Background(), Spec{Application: "a", Release: rel, Dir: dir, Command: "exec sleep 100"}); err != nil {
			t.Fatal(err)
		}
	}
	if info, _ := s.Info("a"); info.Release != "r2" {
		t.Errorf("release after Restart = %q", info.Release)
	}
	_ = s.StopAll(context.Background())
}
