package activate

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/cutover-dev/cutover/agent/layout"
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
