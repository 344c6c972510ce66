package activate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/process"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

type env struct {
	reg   *prometheus.Registry
	root  string
	store *store.Store
	sup   *process.Supervisor
	act   *Activator
}

// newEnv starts an Activator with a real store and supervisor. The health
// server answers 200 on /ok and 500 elsewhere; run.health uses ${PORT}.
func newEnv(t *testing.T) *env {
	t.Helper()
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(health.Close)
	u, _ := url.Parse(health.URL)
	e := &env{reg: prometheus.NewRegistry(), root: t.TempDir(), sup: process.New(process.Config{})}
	var err error
	if e.store, err = store.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.sup.StopAll(context.Background())
		_ = e.store.Close()
	})
	e.act, err = New(Config{Store: e.store, Root: e.root, Processes: e.sup,
		Env: map[string]string{"PORT": u.Port()}, HealthInterval: 10 * time.Millisecond, Registerer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// release records a staged release of app whose health path is healthPath
// ("" for none) and returns its id.
func (e *env) release(t *testing.T, app, version, healthPath string) string {
	t.Helper()
	return e.releaseWithHooks(t, app, version, healthPath, appspec.Hooks{})
}

// releaseWithHooks is release with hooks in its spec.
func (e *env) releaseWithHooks(t *testing.T, app, version, healthPath string, hooks appspec.Hooks) string {
	t.Helper()
	spec := appspec.Spec{Hooks: hooks, Name: app, Run: appspec.Run{Command: "exec sleep 100", StopGrace: 2 * time.Second, HealthTimeout: 300 * time.Millisecond}}
	if healthPath != "" {
		spec.Run.Health = "http://127.0.0.1:${PORT}" + healthPath
	}
	if healthPath == "/ok" {
		spec.Run.HealthTimeout = 10 * time.Second // never the reason a healthy release fails
	}
	m := &manifest.Manifest{Application: app, Spec: spec, Files: []manifest.File{{Path: "VERSION-" + version, Mode: 0o644}}}
	b := m.Encode()
	id := manifest.ReleaseID(b)
	dir := layout.ReleaseDir(e.root, app, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := e.store.Update(func(tx *store.Tx) error {
		return tx.PutRelease(&store.Release{Application: app, ID: id, Manifest: b, State: store.ReleaseStaged})
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) current(t *testing.T, app string) string {
	t.Helper()
	id, err := layout.Current(e.root, app)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) running(app string) string {
	info, _ := e.sup.Info(app)
	return info.Release
}

func (e *env) journal(t *testing.T, d ActivationID) *store.Activation {
	t.Helper()
	a, err := e.act.entry(d)
	if err != nil || a == nil {
		t.Fatalf("journal %s: %v, %v", d, a, err)
	}
	return a
}

func TestSwapIsAtomic(t *testing.T) {
	root := t.TempDir()
	ids := []string{"r1", "r2"}
	for _, id := range ids {
		if err := os.MkdirAll(layout.ReleaseDir(root, "app", id), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(layout.ReleaseDir(root, "app", id), "VERSION"), []byte(id), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Swap(root, "app", "r1"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	result := make(chan error, 1)
	var reads atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				result <- nil
				return
			default:
			}
			b, err := os.ReadFile(filepath.Join(layout.CurrentPath(root, "app"), "VERSION"))
			if err != nil || (string(b) != "r1" && string(b) != "r2") {
				result <- fmt.Errorf("read through current during the swap: %q, %v", b, err)
				return
			}
			reads.Add(1)
		}
	}()
	// Swap until the reader has read many times while swaps went on (an even
	// number of swaps, so that current ends on r2).
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 300 || reads.Load() < 300 || i%2 == 1; i++ {
		if err := Swap(root, "app", ids[i%2]); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-result:
			t.Fatal(err) // the reader stopped: it saw current missing or broken
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("reader made only %d reads", reads.Load())
		}
	}
	close(stop)
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	if got, _ := layout.Current(root, "app"); got != "r2" {
		t.Errorf("current = %q, want r2", got)
	}
	if _, err := os.Lstat(filepath.Join(layout.AppDir(root, "app"), tmpName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("current.tmp left behind: %v", err)
	}
}

func TestSwapReplacesLeftoverTmp(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(layout.ReleaseDir(root, "app", "r1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("junk", filepath.Join(layout.AppDir(root, "app"), tmpName)); err != nil {
		t.Fatal(err)
	}
	if err := Swap(root, "app", "r1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := layout.Current(root, "app"); got != "r1" {
		t.Errorf("current = %q", got)
	}
}

func TestActivateSwapsRestartsAndIsIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := e.release(t, "hello", "v1", "/ok")
	r2 := e.release(t, "hello", "v2", "/ok")
	if _, err := e.act.activate(ctx, "d-1", []Release{{"hello", r1}}); err != nil {
		t.Fatal(err)
	}
	res, err := e.act.activate(ctx, "d-2", []Release{{"hello", r2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.SwapTime.IsZero() || res.SwappedBack {
		t.Errorf("result = %+v", res)
	}
	if got := e.current(t, "hello"); got != r2 {
		t.Errorf("current = %s, want %s", got, r2)
	}
	if got := e.running("hello"); got != r2 {
		t.Errorf("running = %s, want %s", got, r2)
	}
	j := e.journal(t, own("d-2"))
	if j.State != store.ActivationActive || j.Apps[0].Previous != r1 || j.Apps[0].Target != r2 {
		t.Errorf("journal = %+v", j)
	}
	pid := func() int { i, _ := e.sup.Info("hello"); return i.PID }()
	again, err := e.act.activate(ctx, "d-2", []Release{{"hello", r2}})
	if err != nil || !again.SwapTime.Equal(res.SwapTime) {
		t.Errorf("second Activate = %+v, %v; want the first's swap time", again, err)
	}
	if p := func() int { i, _ := e.sup.Info("hello"); return i.PID }(); p != pid {
		t.Errorf("second Activate restarted the app (pid %d -> %d)", pid, p)
	}
}

func TestHealthFailureSwapsBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	good := e.release(t, "a", "v1", "/ok")
	goodB := e.release(t, "b", "v1", "")
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", good}, {"b", goodB}}); err != nil {
		t.Fatal(err)
	}
	newA := e.release(t, "a", "v2", "/ok")
	badB := e.release(t, "b", "v2", "/broken")
	res, err := e.act.activate(ctx, "d-2", []Release{{"a", newA}, {"b", badB}})
	if !errors.Is(err, errkind.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded from the health check", err)
	}
	if !res.SwappedBack || res.SwapTime.IsZero() {
		t.Errorf("result = %+v, want swapped back with a swap time", res)
	}
	for app, want := range map[string]string{"a": good, "b": goodB} {
		if got := e.current(t, app); got != want {
			t.Errorf("%s: current = %s, want the previous %s", app, got, want)
		}
		if got := e.running(app); got != want {
			t.Errorf("%s: running = %s, want the previous %s", app, got, want)
		}
	}
	if j := e.journal(t, own("d-2")); j.State != store.ActivationFailed || !j.SwappedBack {
		t.Errorf("journal = %+v", j)
	}
	res2, err := e.act.activate(ctx, "d-2", []Release{{"a", newA}, {"b", badB}})
	if err == nil || !res2.SwappedBack {
		t.Errorf("Activate again = %+v, %v; want the same failure", res2, err)
	}
}

func TestFailureOfFirstAppWithoutPreviousRemovesCurrent(t *testing.T) {
	e := newEnv(t)
	bad := e.release(t, "a", "v1", "/broken")
	res, err := e.act.activate(context.Background(), "d-1", []Release{{"a", bad}})
	if err == nil || !res.SwappedBack {
		t.Fatalf("Activate = %+v, %v", res, err)
	}
	if _, err := os.Lstat(layout.CurrentPath(e.root, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("current exists after going back to nothing: %v", err)
	}
	if _, ok := e.sup.Info("a"); ok {
		t.Error("app still supervised after going back to nothing")
	}
}

func TestActivateRefusesUnstagedRelease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := e.release(t, "a", "v1", "")
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", r1}}); err != nil {
		t.Fatal(err)
	}
	_, err := e.act.activate(ctx, "d-2", []Release{{"a", strings.Repeat("ab", 32)}})
	if !errors.Is(err, errkind.FailedPrecondition) {
		t.Fatalf("err = %v, want FailedPrecondition", err)
	}
	if got := e.current(t, "a"); got != r1 {
		t.Errorf("current = %s, want unchanged %s", got, r1)
	}
	if a, _ := e.act.entry(own("d-2")); a != nil {
		t.Errorf("refused activation was journaled: %+v", a)
	}
	for _, bad := range [][]Release{{{"../a", r1}}, {{"a", "../../etc"}}, {{"a", r1}, {"a", r1}}} {
		if _, err := e.act.activate(ctx, "d-3", bad); !errors.Is(err, errkind.InvalidArgument) {
			t.Errorf("Activate(%v) = %v, want InvalidArgument", bad, err)
		}
	}
}

func TestRollback(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := e.release(t, "a", "v1", "/ok")
	r2 := e.release(t, "a", "v2", "/ok")
	for d, r := range map[string]string{"d-1": r1} {
		if _, err := e.act.activate(ctx, d, []Release{{"a", r}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.act.activate(ctx, "d-2", []Release{{"a", r2}}); err != nil {
		t.Fatal(err)
	}
	if e.act.Needed("a", r1) != true {
		t.Error("Needed(previous of an active activation) = false")
	}
	for range 2 { // idempotent
		if err := e.act.Rollback(ctx, "d-2", nil); err != nil {
			t.Fatal(err)
		}
		if got := e.current(t, "a"); got != r1 {
			t.Errorf("current = %s, want %s", got, r1)
		}
		if got := e.running("a"); got != r1 {
			t.Errorf("running = %s, want %s", got, r1)
		}
	}
	if j := e.journal(t, own("d-2")); j.State != store.ActivationRolledBack {
		t.Errorf("journal state = %s", j.State)
	}
	if err := e.act.Rollback(ctx, "d-404", nil); err != nil {
		t.Errorf("rollback of an unknown deployment: %v", err)
	}
	// d-1 had no previous release: rolling it back stops the app and removes current.
	if err := e.act.Rollback(ctx, "d-1", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(layout.CurrentPath(e.root, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("current after rolling back the first deployment: %v", err)
	}
	if _, ok := e.sup.Info("a"); ok {
		t.Error("app still runs after rolling back its first deployment")
	}
}

func TestRecoverSwapsBackInterruptedActivation(t *testing.T) {
	e := newEnv(t)
	r1 := e.release(t, "a", "v1", "")
	r2 := e.release(t, "a", "v2", "")
	if err := Swap(e.root, "a", r2); err != nil {
		t.Fatal(err)
	}
	// As if the agent died right after swapping.
	err := e.act.journal(&store.Activation{ActivationID: own("d-3"), State: store.ActivationRunning,
		Apps: []store.AppActivation{{Application: "a", Previous: r1, Target: r2, Swapped: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.act.Recover(); err != nil {
		t.Fatal(err)
	}
	if got := e.current(t, "a"); got != r1 {
		t.Errorf("current = %s, want %s", got, r1)
	}
	if j := e.journal(t, own("d-3")); j.State != store.ActivationFailed || !j.SwappedBack {
		t.Errorf("journal = %+v", j)
	}
	if err := e.act.StartAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.running("a"); got != r1 {
		t.Errorf("StartAll runs %q, want %s", got, r1)
	}
	_, err = e.act.activate(context.Background(), "d-3", []Release{{"a", r2}})
	if !errors.Is(err, errkind.Aborted) {
		t.Errorf("Activate after recovery = %v, want the recorded failure", err)
	}
}

// TestMetrics checks the per-application metrics through a success and a
// failure: one running_release_info series per application (the previous
// release's gone at the swap and back at the swap back), and the last
// activation's result of each application in it.
func TestMetrics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	check := func(step string, want ...string) {
		t.Helper()
		got := gather(t, e.reg, "cutover_agent_last_activation_success", "cutover_agent_running_release_info")
		if !slices.Equal(got, want) {
			t.Errorf("%s: metrics\n%s\nwant\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	check("before any activation")
	a1, b1 := e.release(t, "a", "v1", "/ok"), e.release(t, "b", "v1", "")
	if _, err := e.act.activate(ctx, "d-1", []Release{{"a", a1}, {"b", b1}}); err != nil {
		t.Fatal(err)
	}
	check("after d-1",
		`cutover_agent_last_activation_success{application="a"} 1`,
		`cutover_agent_last_activation_success{application="b"} 1`,
		`cutover_agent_running_release_info{application="a",release="`+a1+`"} 1`,
		`cutover_agent_running_release_info{application="b",release="`+b1+`"} 1`)
	a2 := e.release(t, "a", "v2", "/broken")
	if _, err := e.act.activate(ctx, "d-2", []Release{{"a", a2}}); err == nil {
		t.Fatal("d-2 activated a release whose health check fails")
	}
	check("after the failed d-2",
		`cutover_agent_last_activation_success{application="a"} 0`,
		`cutover_agent_last_activation_success{application="b"} 1`,
		`cutover_agent_running_release_info{application="a",release="`+a1+`"} 1`,
		`cutover_agent_running_release_info{application="b",release="`+b1+`"} 1`)
	a3 := e.release(t, "a", "v3", "/ok")
	if _, err := e.act.activate(ctx, "d-3", []Release{{"a", a3}}); err != nil {
		t.Fatal(err)
	}
	check("after d-3",
		`cutover_agent_last_activation_success{application="a"} 1`,
		`cutover_agent_last_activation_success{application="b"} 1`,
		`cutover_agent_running_release_info{application="a",release="`+a3+`"} 1`,
		`cutover_agent_running_release_info{application="b",release="`+b1+`"} 1`)
}

// gather returns the gauges of reg with the given names as sorted
// `name{label="value",...} value` lines.
func gather(t *testing.T, reg *prometheus.Registry, names ...string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out = append(out, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(labels, ","), m.GetGauge().GetValue()))
		}
	}
	slices.Sort(out)
	return out
}

// activate is Commit without hooks, as the tests of a single-step activation use it.
// own names a deployment's own activation (its stage 2).
func own(deployment string) ActivationID { return ActivationID{Deployment: deployment} }

func (a *Activator) activate(ctx context.Context, deployment string, releases []Release) (Result, error) {
	res, _, err := a.Commit(ctx, own(deployment), releases, nil, CommitOptions{})
	return res, err
}
