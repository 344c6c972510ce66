package activate

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/poll"
)

var (
	listenAppOnce sync.Once
	listenAppPath string
	listenAppErr  error
)

// listenApp builds testdata/listenapp once per test binary.
func listenApp(t *testing.T) string {
	t.Helper()
	listenAppOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cutover-listenapp-")
		if err != nil {
			listenAppErr = err
			return
		}
		listenAppPath = filepath.Join(dir, "listenapp")
		out, err := exec.Command("go", "build", "-o", listenAppPath, "./testdata/listenapp").CombinedOutput()
		if err != nil {
			listenAppErr = errors.New(string(out))
		}
	})
	if listenAppErr != nil {
		t.Fatalf("build testdata/listenapp: %v", listenAppErr)
	}
	return listenAppPath
}

// listenRelease records a staged release of app "web" with run.listen on
// ${LPORT}, serving version; unhealthy makes its health check fail.
func (e *env) listenRelease(t *testing.T, version string, unhealthy bool) string {
	t.Helper()
	spec := appspec.Spec{Name: "web", Run: appspec.Run{Command: "exec " + listenApp(t), Listen: []string{"tcp://127.0.0.1:${LPORT}"},
		Health: "/healthz", HealthTimeout: 2 * time.Second, StopGrace: 5 * time.Second}}
	if unhealthy {
		spec.Run.HealthTimeout = 300 * time.Millisecond
	}
	m := &manifest.Manifest{Application: "web", Spec: spec, Files: []manifest.File{{Path: "VERSION-" + version, Mode: 0o644}}}
	b := m.Encode()
	id := manifest.ReleaseID(b)
	dir := layout.ReleaseDir(e.root, "web", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(version), 0o644); err != nil {
		t.Fatal(err)
	}
	if unhealthy {
		if err := os.WriteFile(filepath.Join(dir, "UNHEALTHY"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.Update(func(tx *store.Tx) error {
		return tx.PutRelease(&store.Release{Application: "web", ID: id, Manifest: b, State: store.ReleaseStaged})
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// prober sends requests to addr from several clients (new connections and
// keep-alive ones) until stopped, and counts failures and answers.
type prober struct {
	addr     string
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	answers  map[string]int
	last     string
	failed   atomic.Int64
	firstErr atomic.Value
}

func startProber(t *testing.T, addr string) *prober {
	p := &prober{addr: addr, stop: make(chan struct{}), answers: map[string]int{}}
	for i := range 4 {
		keepAlive := i%2 == 0
		p.wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keepAlive}}
			defer client.CloseIdleConnections()
			for {
				select {
				case <-p.stop:
					return
				default:
				}
				resp, err := client.Get("http://" + p.addr + "/")
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode == http.StatusOK {
						p.mu.Lock()
						p.answers[string(b)]++
						p.last = string(b)
						p.mu.Unlock()
						continue
					}
				}
				p.failed.Add(1)
				p.firstErr.CompareAndSwap(nil, errors.Join(err, errors.New("status or read")))
			}
		})
	}
	t.Cleanup(p.end)
	return p
}

// until waits for a request answered by version.
func (p *prober) until(t *testing.T, version string) {
	t.Helper()
	if err := poll.True(context.Background(), 10*time.Second, "an answer from "+version, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.last == version
	}); err != nil {
		t.Fatal(err)
	}
}

func (p *prober) end() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

// TestCommitWithOverlapRefusesNothing hands a run.listen app over from v1
// to v2 (held, finished), to an unhealthy v3 (stopped, v2 never stopped),
// to a v4 whose held commit is aborted, and back by rollback, while
// clients send requests all along: none fails.
func TestCommitWithOverlapRefusesNothing(t *testing.T) {
	e := newEnv(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()
	e.act.cfg.Env = map[string]string{"LPORT": strconv.Itoa(port)}
	ctx := context.Background()
	v1, v2, v3, v4 := e.listenRelease(t, "v1", false), e.listenRelease(t, "v2", false), e.listenRelease(t, "v3", true), e.listenRelease(t, "v4", false)

	if _, _, err := e.act.Commit(ctx, own("d-1"), []Release{{"web", v1}}, nil, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	p := startProber(t, "127.0.0.1:"+strconv.Itoa(port))
	p.until(t, "v1")
	pid1 := e.pid(t)

	readies := 0
	res, _, err := e.act.Commit(ctx, own("d-2"), []Release{{"web", v2}}, nil, CommitOptions{Hold: true, Ready: func() {
		readies++
		if e.running("web") != v1 {
			t.Error("the old process stopped before the finish")
		}
		e.act.Finish(own("d-2"), false)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if readies == 0 || res.Overlap <= 0 || res.SwapTime.IsZero() || e.running("web") != v2 || e.pid(t) == pid1 {
		t.Fatalf("held commit: readies %d, result %+v, running %s: want ready, an overlap, a switch time, v2 in a new process", readies, res, e.running("web"))
	}
	p.until(t, "v2")

	if _, _, err := e.act.Commit(ctx, own("d-3"), []Release{{"web", v3}}, nil, CommitOptions{Hold: true, Ready: func() { t.Error("an unhealthy release reported ready") }}); err == nil {
		t.Fatal("commit of an unhealthy release succeeded")
	}
	if e.running("web") != v2 || e.current(t, "web") != v2 {
		t.Fatalf("after the unhealthy v3: running %s, current %s; want v2", e.running("web"), e.current(t, "web"))
	}

	_, _, err = e.act.Commit(ctx, own("d-4"), []Release{{"web", v4}}, nil, CommitOptions{Hold: true, Ready: func() { e.act.Finish(own("d-4"), true) }})
	if !errors.Is(err, errkind.Aborted) || e.running("web") != v2 || e.current(t, "web") != v2 {
		t.Fatalf("aborted held commit: %v, running %s, current %s; want Aborted, v2", err, e.running("web"), e.current(t, "web"))
	}

	if err := e.act.Rollback(ctx, "d-2", nil); err != nil {
		t.Fatal(err)
	}
	p.until(t, "v1")
	p.end()
	if n := p.failed.Load(); n > 0 {
		t.Fatalf("%d requests failed (first: %v); answers %v", n, p.firstErr.Load(), p.answers)
	}
	t.Logf("answers per version: %v", p.answers)
	if p.answers["v3"] > 0 || p.answers["v4"] > 0 {
		t.Logf("v3 or v4 answered while beside the old one (allowed: both serve until the switch)")
	}
}

func (e *env) pid(t *testing.T) int {
	t.Helper()
	info, ok := e.sup.Info("web")
	if !ok || info.PID == 0 {
		t.Fatal("web runs nothing")
	}
	return info.PID
}
