package controlplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/leader"
	"github.com/cutover-dev/cutover/controlplane/pki"
	"github.com/cutover-dev/cutover/internal/etcdcluster"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestControllersShareTheCA: controllers on one etcd prefix, started
// without an operator's CA, all use the CA the first one shared there; a
// data dir that already holds another CA is refused, saying so.
func TestControllersShareTheCA(t *testing.T) {
	e := startEtcd1(t)
	start := func(dir string) (*Controller, error) {
		c, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", Store: StoreEtcd,
			Etcd: EtcdConfig{Endpoints: e.Endpoints, Prefix: "/share-ca/"}})
		if err == nil {
			t.Cleanup(c.close)
		}
		return c, err
	}
	a, err := start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a.pki.CAHash() != b.pki.CAHash() {
		t.Fatalf("two controllers on one etcd have CAs %s and %s; want one", a.pki.CAHash(), b.pki.CAHash())
	}
	// A data dir made by a controller of its own keeps its CA: refused.
	other := t.TempDir()
	if _, err := pki.Open(pki.Config{Dir: filepath.Join(other, "tls"), Log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	if _, err := start(other); !errors.Is(err, errkind.FailedPrecondition) {
		t.Fatalf("a data dir with another CA: %v; want FailedPrecondition", err)
	}
}

// TestFollowerConsole: a follower's console says where the leader is (or
// that none is elected) instead of serving pages whose actions no leader
// would run; the leader's serves them.
func TestFollowerConsole(t *testing.T) {
	e := startEtcd1(t)
	var ctls []*Controller
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.1:0"} {
		c, err := New(Config{DataDir: t.TempDir(), Listen: addr, Store: StoreEtcd, Advertise: "ctl-" + string(rune('a'+len(ctls))) + ":7070",
			Etcd: EtcdConfig{Endpoints: e.Endpoints, Prefix: "/console/"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		ctls = append(ctls, c)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "the console") })
	get := func(c *Controller) (int, string) {
		rec := httptest.NewRecorder()
		c.role.followerConsole(page).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(ctls[1]); code != http.StatusServiceUnavailable || !strings.Contains(body, "no leader is elected") {
		t.Fatalf("with no leader: %d %q", code, body)
	}
	// ctls[0] leads (its elector, without the rest of Run).
	lctx, stop := context.WithCancel(context.Background())
	leading := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ctls[0].role.elector.Run(lctx, func(ctx context.Context, term leader.Term) error {
			ctls[0].role.epoch.Store(term.Epoch)
			close(leading)
			<-ctx.Done()
			return nil
		})
	}()
	t.Cleanup(func() { stop(); <-done })
	select {
	case <-leading:
	case <-time.After(10 * time.Second):
		t.Fatal("ctls[0] was not elected")
	}
	if code, body := get(ctls[1]); code != http.StatusServiceUnavailable || !strings.Contains(body, "ctl-a:7070") {
		t.Fatalf("a follower's console: %d %q; want 503 naming the leader ctl-a:7070", code, body)
	}
	if code, body := get(ctls[0]); code != http.StatusOK || body != "the console" {
		t.Fatalf("the leader's console: %d %q", code, body)
	}
}

// startEtcd1 starts a one-member etcd for a test, stopped when it ends.
func startEtcd1(t *testing.T) *etcdcluster.Cluster {
	t.Helper()
	bin := etcdcluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), etcdcluster.StartTimeout)
	defer cancel()
	e, err := etcdcluster.Start(ctx, etcdcluster.Config{Members: 1, Dir: t.TempDir(), Binary: bin})
	t.Cleanup(e.Close)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
