package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/controlplane/pki"
	"github.com/cutover-dev/cutover/internal/etcdcluster"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// TestControllersShareTheCA: controllers on one etcd prefix, started
// without an operator's CA, all use the CA the first one shared there; a
// data dir that already holds another CA is refused, saying so.
func TestControllersShareTheCA(t *testing.T) {
	bin := etcdcluster.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), etcdcluster.StartTimeout)
	defer cancel()
	e, err := etcdcluster.Start(ctx, etcdcluster.Config{Members: 1, Dir: t.TempDir(), Binary: bin})
	defer e.Close()
	if err != nil {
		t.Fatal(err)
	}
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
