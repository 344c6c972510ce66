package activate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/process"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestStopApp: a stop removes `current` and stops the process, keeps the
// staged release, and a restarted agent (StartAll) starts nothing; stopping
// again, or an app never deployed here, is fine.
func TestStopApp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := e.release(t, "a", "v1", "/ok")
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	if e.running("a") != r1 {
		t.Fatalf("a runs %q before the stop, want %s", e.running("a"), r1)
	}
	if err := e.act.StopApp(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := e.current(t, "a"); got != "" {
		t.Errorf("current = %s after the stop, want none", got)
	}
	if _, ok := e.sup.Info("a"); ok {
		t.Errorf("a's process still runs after the stop")
	}
	if _, err := os.Stat(layout.ReleaseDir(e.root, "a", r1)); err != nil {
		t.Errorf("the release is gone after the stop: %v", err)
	}
	if err := e.act.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.sup.Info("a"); ok {
		t.Errorf("StartAll (an agent restart) started the stopped app again")
	}
	for _, app := range []string{"a", "never-deployed"} {
		if err := e.act.StopApp(ctx, app); err != nil {
			t.Errorf("stop %s, which runs nothing: %v", app, err)
		}
	}
	if err := e.act.StopApp(ctx, "../etc"); !errors.Is(err, errkind.InvalidArgument) {
		t.Errorf("bad name: err = %v, want InvalidArgument", err)
	}
}

// An agent that died between removing `current` and stopping the process
// (app stop, a rollback to nothing) leaves the app running; the next agent
// adopts it and StartAll stops it: a front-end runs what `current` says.
func TestStartAllStopsAnAdoptedAppWithoutCurrent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	runDir := t.TempDir()
	first := process.New(process.Config{RunDir: runDir})
	e.act.cfg.Processes = first
	r1 := e.release(t, "a", "v1", "/ok")
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	info, ok := first.Info("a")
	if !ok || info.PID == 0 {
		t.Fatal("a does not run")
	}
	first.Detach() // the agent dies, the app lives on
	if err := removeCurrent(e.root, "a"); err != nil {
		t.Fatal(err)
	}
	next := process.New(process.Config{RunDir: runDir})
	t.Cleanup(func() { _ = next.StopAll(context.Background()) })
	if _, err := next.Adopt(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := next.Info("a"); !ok || !got.Adopted || got.PID != info.PID {
		t.Fatalf("the next agent did not adopt pid %d: %+v, %v", info.PID, got, ok)
	}
	e.act.cfg.Processes = next
	if err := e.act.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := next.Info("a"); ok {
		t.Error("StartAll left an adopted app running that has no current release")
	}
	if err := syscall.Kill(info.PID, 0); err == nil && !exited(info.PID) {
		t.Errorf("pid %d still alive", info.PID)
	}
}

// exited says whether pid has exited: it is gone, or a zombie that its
// parent (this test process, which started it through the first agent's
// supervisor) has not reaped yet.
func exited(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	_, after, ok := strings.Cut(string(b), ") ") // the command name may hold spaces
	return ok && strings.HasPrefix(after, "Z")
}
