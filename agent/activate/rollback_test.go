package activate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
)

// deployedTwice activates r1 (d-1, with r1Hooks), then r2 (d-2) of app
// "a", and returns r1 and r2.
func deployedTwice(t *testing.T, e *env, r1Hooks appspec.Hooks) (string, string) {
	t.Helper()
	ctx := context.Background()
	r1 := e.releaseWithHooks(t, "a", "v1", "/ok", r1Hooks)
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	r2 := e.release(t, "a", "v2", "/ok")
	if _, err := e.act.activate(ctx, "d-2", []Release{{"a", r2}}); err != nil {
		t.Fatal(err)
	}
	return r1, r2
}

// TestRollbackByCommandJournalsWhatItUndid: the commit of a rollback by
// command (its own key) journals the deployment it undid as rolled back, in
// the same transaction as its own success; a commit of that deployment
// resent afterwards is refused. A rollback that fails (here its validate
// hook) leaves the deployment active: it runs again.
func TestRollbackByCommandJournalsWhatItUndid(t *testing.T) {
	tests := []struct {
		name     string
		validate string // r1's validate hook; "" for none
		wantErr  bool
		current  string // "r1" or "r2"
		d2       store.ActivationState
		key      store.ActivationState
	}{
		{"committed", "", false, "r1", store.ActivationRolledBack, store.ActivationActive},
		{"validate fails", "exit 4", true, "r2", store.ActivationActive, store.ActivationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			var hooks appspec.Hooks
			var refs []appspec.HookRef
			if tt.validate != "" {
				hooks.Validate = []appspec.Hook{{Command: tt.validate}}
				refs = []appspec.HookRef{{Application: "a", Kind: appspec.Validate}}
			}
			r1, r2 := deployedTwice(t, e, hooks)
			key := ActivationID{Deployment: "d-2", RollbackAttempt: 5}
			if err := e.act.Arm(ctx, key, []Release{{"a", r1}}); err != nil {
				t.Fatal(err)
			}
			_, _, err := e.act.Commit(ctx, key, []Release{{"a", r1}}, refs, CommitOptions{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("commit of the rollback: %v, want error %v", err, tt.wantErr)
			}
			want := map[string]string{"r1": r1, "r2": r2}[tt.current]
			if e.current(t, "a") != want || e.running("a") != want {
				t.Errorf("current %s running %s, want %s", e.current(t, "a"), e.running("a"), tt.current)
			}
			if got := e.state(t, own("d-2")); got != tt.d2 {
				t.Errorf("d-2's journal entry is %s, want %s", got, tt.d2)
			}
			if got := e.state(t, key); got != tt.key {
				t.Errorf("the rollback's journal entry is %s, want %s", got, tt.key)
			}
			if e.state(t, own("d-1")) != store.ActivationActive {
				t.Errorf("d-1's journal entry is %s, want active (untouched)", e.state(t, own("d-1")))
			}
			if tt.d2 == store.ActivationRolledBack {
				if _, _, err := e.act.Commit(ctx, own("d-2"), []Release{{"a", r2}}, nil, CommitOptions{}); err == nil || e.current(t, "a") != r1 {
					t.Errorf("a resent commit of the rolled-back d-2: %v, current %s; want refused, r1 kept", err, e.current(t, "a"))
				}
			}
		})
	}
}

// TestRecoverInterruptedRollbackByCommand: an agent that stopped after the
// rollback's swap, before its commit was journaled, goes back to the
// releases of the deployment being undone, which stays active; and an
// active entry left by an older agent after a committed rollback is
// journaled rolled back.
func TestRecoverInterruptedRollbackByCommand(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1, r2 := deployedTwice(t, e, appspec.Hooks{})
	key := ActivationID{Deployment: "d-2", RollbackAttempt: 5}
	if err := e.act.Arm(ctx, key, []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	if err := commitLink(e.root, "a", r1); err != nil { // the rollback's swap, then the agent stops
		t.Fatal(err)
	}
	if err := e.act.Recover(); err != nil {
		t.Fatal(err)
	}
	if e.current(t, "a") != r2 || e.state(t, key) != store.ActivationFailed || e.state(t, own("d-2")) != store.ActivationActive {
		t.Fatalf("after Recover: current %s, rollback %s, d-2 %s; want r2, failed, active",
			e.current(t, "a"), e.state(t, key), e.state(t, own("d-2")))
	}

	// An older agent committed a rollback and left d-2 active.
	key = ActivationID{Deployment: "d-2", RollbackAttempt: 9}
	if err := e.act.Arm(ctx, key, []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	en := e.journal(t, key)
	if err := commitLink(e.root, "a", r1); err != nil {
		t.Fatal(err)
	}
	en.State = store.ActivationActive
	if err := e.act.journal(en); err != nil { // without what it undid
		t.Fatal(err)
	}
	if err := e.act.Recover(); err != nil {
		t.Fatal(err)
	}
	if e.current(t, "a") != r1 || e.state(t, key) != store.ActivationActive || e.state(t, own("d-2")) != store.ActivationRolledBack {
		t.Fatalf("after Recover: current %s, rollback %s, d-2 %s; want r1, active, rolled_back",
			e.current(t, "a"), e.state(t, key), e.state(t, own("d-2")))
	}
}

// TestSwapBackWaitsForHealth: a failed activation reports only once the
// previous release, restarted, passes its health check again, and says so
// when it does not.
func TestSwapBackWaitsForHealth(t *testing.T) {
	var v1Up atomic.Bool
	v1Up.Store(true)
	var v1Probes atomic.Int32
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1" {
			v1Probes.Add(1)
			if v1Up.Load() {
				return
			}
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(health.Close)
	u, _ := url.Parse(health.URL)
	e := newEnv(t)
	var err error
	e.act, err = New(Config{Store: e.store, Root: e.root, Processes: e.sup,
		Env: map[string]string{"PORT": u.Port()}, HealthInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r1 := e.release(t, "a", "v1", "/v1")
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	r2 := e.release(t, "a", "v2", "/v2") // never healthy
	before := v1Probes.Load()
	if _, err := e.act.activate(ctx, "d-2", []Release{{"a", r2}}); err == nil || strings.Contains(err.Error(), "problems") {
		t.Fatalf("activation of an unhealthy release: %v; want its failure, the swap back clean", err)
	}
	if v1Probes.Load() == before {
		t.Error("the swap back reported without probing the previous release's health")
	}
	v1Up.Store(false)
	_, err = e.act.activate(ctx, "d-3", []Release{{"a", r2}})
	if j := e.journal(t, own("d-3")); err == nil || !strings.Contains(j.Error, "back on release "+r1) {
		t.Errorf("swap back to an unhealthy previous release: journal error %q; want it named", j.Error)
	}
}
