package activate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/agent/hook"
	"github.com/cutover-dev/cutover/agent/process"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
)

// hookEnv is an env whose store lives in a directory the test knows, so
// that it can stop the "agent" (close the store) and start it again.
type hookEnv struct {
	*env
	dataDir string
	counter string // each counting hook appends a line here
}

func newHookEnv(t *testing.T) *hookEnv {
	t.Helper()
	h := &hookEnv{env: &env{root: t.TempDir(), sup: process.New(process.Config{})}, dataDir: t.TempDir(),
		counter: filepath.Join(t.TempDir(), "counter")}
	h.restart(t)
	t.Cleanup(func() {
		_ = h.sup.StopAll(context.Background())
		_ = h.store.Close()
	})
	return h
}

// restart closes the store if open, opens it again and makes a new
// Activator on it: what an agent that restarted has.
func (h *hookEnv) restart(t *testing.T) {
	t.Helper()
	if h.store != nil {
		if err := h.store.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if h.store, err = store.Open(h.dataDir); err != nil {
		t.Fatal(err)
	}
	h.reg = prometheus.NewRegistry()
	if h.act, err = New(Config{Store: h.store, Root: h.root, Processes: h.sup, Registerer: h.reg, HealthInterval: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := h.act.Recover(); err != nil {
		t.Fatal(err)
	}
}

// count is a hook command that appends word to the counter file, then
// runs then (if not empty).
func (h *hookEnv) count(word, then string) appspec.Hook {
	c := "echo " + word + " >> " + h.counter
	if then != "" {
		c += "; " + then
	}
	return appspec.Hook{Command: c}
}

// lines returns the counter file's lines.
func (h *hookEnv) lines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(h.counter)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func refs(kind appspec.HookKind, n int) []appspec.HookRef {
	out := make([]appspec.HookRef, n)
	for i := range out {
		out[i] = appspec.HookRef{Application: "a", Kind: kind, Index: i}
	}
	return out
}

// TestHooksCommandResentRunsNothingAgain: the same hooks command (same
// id) sent again — by the same agent, and by the agent after a restart —
// answers from the journal: the hooks' side effects happen once, the
// results are the first run's; a failed hook answers its failure again.
// Another command id runs the hooks again.
func TestHooksCommandResentRunsNothingAgain(t *testing.T) {
	h := newHookEnv(t)
	ctx := context.Background()
	r1 := h.releaseWithHooks(t, "a", "v1", "", appspec.Hooks{BeforeActivate: []appspec.Hook{
		h.count("one", "echo out-one"), h.count("two", "echo failing >&2; exit 3"), h.count("three", ""),
	}})
	rels := []Release{{"a", r1}}
	first, err := h.act.RunHooks(ctx, "d-1.before_activate.fe-1", own("d-1"), rels, refs(appspec.BeforeActivate, 3))
	if err == nil || len(first) != 2 || first[1].ExitCode != 3 || !strings.Contains(first[1].Output, "failing") {
		t.Fatalf("first run = %+v, %v; want the second hook's failure", first, err)
	}
	check := func(what string, got []hook.Result, err error) {
		t.Helper()
		if err == nil || err.Error() != first[1].Error {
			t.Errorf("%s: error %v, want the first run's: %s", what, err, first[1].Error)
		}
		if len(got) != 2 || got[0].Output != first[0].Output || got[0].Duration != first[0].Duration || got[1].ExitCode != 3 || got[1].Error != first[1].Error {
			t.Errorf("%s: results %+v, want the first run's %+v", what, got, first)
		}
		if l := h.lines(t); strings.Join(l, ",") != "one,two" {
			t.Errorf("%s: the hooks ran %v times, want one,two once", what, l)
		}
	}
	got, err := h.act.RunHooks(ctx, "d-1.before_activate.fe-1", own("d-1"), rels, refs(appspec.BeforeActivate, 3))
	check("resent", got, err)
	h.restart(t)
	got, err = h.act.RunHooks(ctx, "d-1.before_activate.fe-1", own("d-1"), rels, refs(appspec.BeforeActivate, 3))
	check("resent after an agent restart", got, err)

	if _, err := h.act.RunHooks(ctx, "d-2.before_activate.fe-1", own("d-2"), rels, refs(appspec.BeforeActivate, 1)); err != nil {
		t.Fatal(err)
	}
	if l := h.lines(t); strings.Join(l, ",") != "one,two,one" {
		t.Errorf("a new command: the hooks ran %v, want one,two,one", l)
	}
}

// TestHookInterruptedByAgentCrashIsNotRunAgain: a hook journaled started
// without a result (the agent stopped while it ran) is reported FAILED as
// interrupted and not run again, by every later resend; the hooks before
// it answer from the journal, none after it runs.
func TestHookInterruptedByAgentCrashIsNotRunAgain(t *testing.T) {
	h := newHookEnv(t)
	ctx := context.Background()
	r1 := h.releaseWithHooks(t, "a", "v1", "", appspec.Hooks{BeforeActivate: []appspec.Hook{h.count("one", ""), h.count("two", ""), h.count("three", "")}})
	rels := []Release{{"a", r1}}
	// What a crash during the second hook leaves: the first done, the
	// second started. (The hook runner stops the first run there.)
	h.act.cfg.Hooks = crashAt{real: h.act.cfg.Hooks, at: 1}
	func() {
		defer func() {
			if r := recover(); r != (crash{}) {
				t.Fatalf("first run: recovered %v, want the injected crash", r)
			}
		}()
		_, err := h.act.RunHooks(ctx, "d-1.before_activate.fe-1", own("d-1"), rels, refs(appspec.BeforeActivate, 3))
		t.Fatalf("first run returned (%v); want the injected crash", err)
	}()
	h.restart(t)
	for _, what := range []string{"resent after the restart", "resent again"} {
		got, err := h.act.RunHooks(ctx, "d-1.before_activate.fe-1", own("d-1"), rels, refs(appspec.BeforeActivate, 3))
		if err == nil || !strings.Contains(err.Error(), "was interrupted") || !strings.Contains(err.Error(), "not run again") {
			t.Errorf("%s: error %v, want the interrupted hook's", what, err)
		}
		if len(got) != 2 || got[0].Failed() || !got[1].Failed() || got[1].ExitCode != -1 || got[1].Ref.Index != 1 {
			t.Errorf("%s: results %+v, want the first hook's success and the second interrupted", what, got)
		}
		if l := h.lines(t); strings.Join(l, ",") != "one" {
			t.Errorf("%s: the hooks ran %v, want one once and nothing more", what, l)
		}
	}
}

// TestHooksResumeAfterTheLastJournaled: a crash between two hooks (the
// first done, the second not started) resumes with the second.
func TestHooksResumeAfterTheLastJournaled(t *testing.T) {
	h := newHookEnv(t)
	ctx := context.Background()
	r1 := h.releaseWithHooks(t, "a", "v1", "", appspec.Hooks{BeforeActivate: []appspec.Hook{h.count("one", ""), h.count("two", "")}})
	rels := []Release{{"a", r1}}
	if _, err := h.act.RunHooks(ctx, "c", own("d-1"), rels, refs(appspec.BeforeActivate, 1)); err != nil {
		t.Fatal(err)
	}
	h.restart(t)
	got, err := h.act.RunHooks(ctx, "c", own("d-1"), rels, refs(appspec.BeforeActivate, 2))
	if err != nil || len(got) != 2 {
		t.Fatalf("resent = %+v, %v", got, err)
	}
	if l := h.lines(t); strings.Join(l, ",") != "one,two" {
		t.Errorf("the hooks ran %v, want one,two", l)
	}
	// The same id with other hooks is refused, running nothing.
	other := []appspec.HookRef{{Application: "a", Kind: appspec.AfterActivate, Index: 0}}
	if _, err := h.act.RunHooks(ctx, "c", own("d-1"), rels, other); err == nil || !strings.Contains(err.Error(), "other hooks") {
		t.Errorf("same id, other hooks: %v", err)
	}
}

// TestHooksCommandTwiceAtOnce: the same command twice at once runs each
// hook once; the second waits for the first and answers from the journal.
func TestHooksCommandTwiceAtOnce(t *testing.T) {
	h := newHookEnv(t)
	gate := filepath.Join(t.TempDir(), "go")
	r1 := h.releaseWithHooks(t, "a", "v1", "", appspec.Hooks{BeforeActivate: []appspec.Hook{
		h.count("one", "while [ ! -e "+gate+" ]; do sleep 0.01; done"),
	}})
	var wg sync.WaitGroup
	results := make([][]hook.Result, 2)
	for i := range results {
		wg.Go(func() {
			var err error
			results[i], err = h.act.RunHooks(context.Background(), "c", own("d-1"), []Release{{"a", r1}}, refs(appspec.BeforeActivate, 1))
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if l := h.lines(t); len(l) != 1 {
		t.Errorf("the hook ran %d times, want once", len(l))
	}
	if len(results[0]) != 1 || len(results[1]) != 1 || results[0][0].Duration != results[1][0].Duration {
		t.Errorf("results %+v and %+v differ", results[0], results[1])
	}
}

// TestCommitResentRunsNoValidateHookAgain: a commit sent again after it
// succeeded answers DONE from the activation journal, with its validate
// hooks' results from the hook journal, running none of them again.
func TestCommitResentRunsNoValidateHookAgain(t *testing.T) {
	h := newHookEnv(t)
	ctx := context.Background()
	r1 := h.releaseWithHooks(t, "a", "v1", "", appspec.Hooks{Validate: []appspec.Hook{h.count("validate", "echo checked")}})
	rels := []Release{{"a", r1}}
	_, first, err := h.act.Commit(ctx, own("d-1"), rels, refs(appspec.Validate, 1), CommitOptions{})
	if err != nil || len(first) != 1 {
		t.Fatalf("Commit = %+v, %v", first, err)
	}
	h.restart(t)
	_, again, err := h.act.Commit(ctx, own("d-1"), rels, refs(appspec.Validate, 1), CommitOptions{})
	if err != nil || len(again) != 1 || again[0].Output != first[0].Output || again[0].Duration != first[0].Duration {
		t.Errorf("resent Commit = %+v, %v; want DONE with the first run's hooks %+v", again, err, first)
	}
	if l := h.lines(t); len(l) != 1 {
		t.Errorf("the validate hook ran %d times, want once", len(l))
	}
}

// TestOldHookRunsArePruned: a command's first hook deletes the runs older
// than HookRunRetention.
func TestOldHookRunsArePruned(t *testing.T) {
	h := newHookEnv(t)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	h.act.cfg.Clock = func() time.Time { return now }
	r1 := h.releaseWithHooks(t, "a", "v1", "", appspec.Hooks{BeforeActivate: []appspec.Hook{h.count("one", "")}})
	rels := []Release{{"a", r1}}
	if _, err := h.act.RunHooks(context.Background(), "old", own("d-1"), rels, refs(appspec.BeforeActivate, 1)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(HookRunRetention + time.Hour)
	if _, err := h.act.RunHooks(context.Background(), "new", own("d-2"), rels, refs(appspec.BeforeActivate, 1)); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]int{"old": 0, "new": 1} {
		if runs, err := h.act.hookRuns(key); err != nil || len(runs) != want {
			t.Errorf("runs of %s: %d, %v; want %d", key, len(runs), err, want)
		}
	}
}

// crashAt wraps the real HookRunner: the hook of index at never comes
// back to the Activator (its Run panics before the hook starts), as when
// the agent is killed while the hook runs, after its start was journaled.
type crashAt struct {
	real HookRunner
	at   int
}

type crash struct{}

func (c crashAt) Run(ctx context.Context, dir, release string, ref appspec.HookRef, h appspec.Hook) hook.Result {
	if ref.Index == c.at {
		panic(crash{})
	}
	return c.real.Run(ctx, dir, release, ref, h)
}
