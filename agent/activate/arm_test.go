package activate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
)

func (e *env) next(t *testing.T, app string) string {
	t.Helper()
	target, err := os.Readlink(layout.NextPath(e.root, app))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(target)
}

func (e *env) state(t *testing.T, id ActivationID) store.ActivationState {
	t.Helper()
	en, err := e.act.entry(id)
	if err != nil || en == nil {
		t.Fatalf("journal entry of %s: %v, %v", id, en, err)
	}
	return en.State
}

// TestArmDisarmCommit: arm prepares current.next and changes nothing that
// runs; disarm removes it; commit renames it over current.
func TestArmDisarmCommit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := e.release(t, "a", "v1", "/ok")
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	r2 := e.release(t, "a", "v2", "/ok")
	if err := e.act.Arm(ctx, own("d-2"), []Release{{"a", r2}}); err != nil {
		t.Fatal(err)
	}
	if e.next(t, "a") != r2 || e.current(t, "a") != r1 || e.running("a") != r1 || e.state(t, own("d-2")) != store.ActivationArmed {
		t.Fatalf("after arm: next %s current %s running %s state %s", e.next(t, "a"), e.current(t, "a"), e.running("a"), e.state(t, own("d-2")))
	}
	if !e.act.Needed("a", r2) || !e.act.Needed("a", r1) {
		t.Error("an armed activation's releases are not kept for it")
	}
	if err := e.act.Disarm(ctx, own("d-2")); err != nil {
		t.Fatal(err)
	}
	if e.next(t, "a") != "" || e.current(t, "a") != r1 || e.state(t, own("d-2")) != store.ActivationDisarmed {
		t.Fatalf("after disarm: next %q current %s state %s", e.next(t, "a"), e.current(t, "a"), e.state(t, own("d-2")))
	}
	if err := e.act.Disarm(ctx, own("d-2")); err != nil {
		t.Fatalf("disarm again: %v", err)
	}
	if err := e.act.Arm(ctx, own("d-2"), []Release{{"a", r2}}); err != nil {
		t.Fatal(err)
	}
	res, hooks, err := e.act.Commit(ctx, own("d-2"), []Release{{"a", r2}}, nil, CommitOptions{})
	if err != nil || res.SwapTime.IsZero() || len(hooks) != 0 {
		t.Fatalf("commit = %+v, %v, %v", res, hooks, err)
	}
	if e.next(t, "a") != "" || e.current(t, "a") != r2 || e.running("a") != r2 || e.state(t, own("d-2")) != store.ActivationActive {
		t.Fatalf("after commit: next %q current %s running %s state %s", e.next(t, "a"), e.current(t, "a"), e.running("a"), e.state(t, own("d-2")))
	}
	if err := e.act.Arm(ctx, own("d-2"), []Release{{"a", r2}}); err != nil || e.next(t, "a") != "" {
		t.Fatalf("arming a committed deployment: %v, next %q; want nothing done", err, e.next(t, "a"))
	}
	r3 := e.release(t, "a", "v3", "/ok")
	if err := os.RemoveAll(layout.ReleaseDir(e.root, "a", r3)); err != nil {
		t.Fatal(err)
	}
	if err := e.act.Arm(ctx, own("d-3"), []Release{{"a", r3}}); err == nil || !strings.Contains(err.Error(), "stage it again") || e.next(t, "a") != "" {
		t.Fatalf("arming a release whose directory is gone: %v, next %q", err, e.next(t, "a"))
	}
}

// TestCommitValidateFailureSwapsBack: a validate hook that fails after the
// swap sends the app back to its previous release, and its result comes back.
func TestCommitValidateFailureSwapsBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := e.release(t, "a", "v1", "/ok")
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	r2 := e.releaseWithHooks(t, "a", "v2", "/ok", appspec.Hooks{Validate: []appspec.Hook{{Command: "echo smoke failed; exit 3"}}})
	if err := e.act.Arm(ctx, own("d-2"), []Release{{"a", r2}}); err != nil {
		t.Fatal(err)
	}
	res, hooks, err := e.act.Commit(ctx, own("d-2"), []Release{{"a", r2}}, []appspec.HookRef{{Application: "a", Kind: appspec.Validate}}, CommitOptions{})
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") || !res.SwappedBack || res.SwapTime.IsZero() {
		t.Fatalf("commit = %+v, %v; want a failure after the swap, swapped back", res, err)
	}
	if len(hooks) != 1 || hooks[0].ExitCode != 3 || hooks[0].Output != "smoke failed\n" {
		t.Errorf("hook results = %+v", hooks)
	}
	if e.current(t, "a") != r1 || e.running("a") != r1 || e.next(t, "a") != "" || e.state(t, own("d-2")) != store.ActivationFailed {
		t.Errorf("after the failed validate: current %s running %s next %q state %s; want r1 running, nothing armed", e.current(t, "a"), e.running("a"), e.next(t, "a"), e.state(t, own("d-2")))
	}
}

// TestRunHooksDirectory: a hook runs in the release `current` points to,
// or in the new release when the app runs nothing yet; the first failure
// stops the list.
func TestRunHooksDirectory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "pwd")
	hooks := appspec.Hooks{BeforeActivate: []appspec.Hook{{Command: "pwd >> " + out}, {Command: "exit 7"}, {Command: "echo never >> " + out}}}
	r1 := e.releaseWithHooks(t, "a", "v1", "/ok", hooks)
	refs := []appspec.HookRef{{Application: "a", Kind: appspec.BeforeActivate, Index: 0}}
	if _, err := e.act.RunHooks(ctx, "d-0.before_activate.fe", own("d-0"), []Release{{"a", r1}}, refs); err != nil {
		t.Fatal(err)
	}
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	r2 := e.releaseWithHooks(t, "a", "v2", "/ok", hooks)
	all := append(refs, appspec.HookRef{Application: "a", Kind: appspec.BeforeActivate, Index: 1}, appspec.HookRef{Application: "a", Kind: appspec.BeforeActivate, Index: 2})
	res, err := e.act.RunHooks(ctx, "d-2.before_activate.fe", own("d-2"), []Release{{"a", r2}}, all)
	if err == nil || len(res) != 2 || res[1].ExitCode != 7 {
		t.Fatalf("RunHooks = %+v, %v; want the second hook's failure, the third not run", res, err)
	}
	b, _ := os.ReadFile(out)
	want := layout.ReleaseDir(e.root, "a", r1) + "\n" + layout.ReleaseDir(e.root, "a", r1) + "\n"
	if string(b) != want {
		t.Errorf("hooks ran in\n%s\nwant\n%s", b, want)
	}
	if _, err := e.act.RunHooks(ctx, "d-2.after_activate.fe", own("d-2"), []Release{{"a", r2}}, []appspec.HookRef{{Application: "a", Kind: appspec.AfterActivate, Index: 0}}); err == nil {
		t.Error("a hook the spec does not have ran")
	}
}

// TestRecoverInterruptedCommit: the commit journals nothing before its
// swaps, so an agent that stopped after a swap finds an armed entry whose
// `current` points at its target: Recover swaps it back; an armed entry
// not yet swapped stays armed.
func TestRecoverInterruptedCommit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := e.release(t, "a", "v1", "/ok")
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	r2 := e.release(t, "a", "v2", "/ok")
	if err := e.act.Arm(ctx, own("d-2"), []Release{{"a", r2}}); err != nil {
		t.Fatal(err)
	}
	if err := e.act.Recover(); err != nil {
		t.Fatal(err)
	}
	if e.state(t, own("d-2")) != store.ActivationArmed || e.current(t, "a") != r1 || e.next(t, "a") != r2 {
		t.Fatalf("armed, not swapped, after Recover: state %s current %s next %s", e.state(t, own("d-2")), e.current(t, "a"), e.next(t, "a"))
	}
	if err := commitLink(e.root, "a", r2); err != nil { // the commit's swap, then the agent stops
		t.Fatal(err)
	}
	if err := e.act.Recover(); err != nil {
		t.Fatal(err)
	}
	if e.state(t, own("d-2")) != store.ActivationFailed || e.current(t, "a") != r1 {
		t.Fatalf("after Recover: state %s current %s; want failed, back on r1", e.state(t, own("d-2")), e.current(t, "a"))
	}
	if _, _, err := e.act.Commit(ctx, own("d-2"), []Release{{"a", r2}}, nil, CommitOptions{}); err == nil {
		t.Error("a commit resent after the recovery succeeded; want the recorded failure")
	}
}
