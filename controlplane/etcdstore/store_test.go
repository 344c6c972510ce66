package etcdstore

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/model/storetest"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/internal/etcdcluster"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// cluster is the package's three-member etcd, started once (TestMain).
var cluster *etcdcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(etcdcluster.Main(m, 3, func(c *etcdcluster.Cluster) { cluster = c }))
}

var prefixes atomic.Int64

// newPrefix is a prefix no other test uses.
func newPrefix() string { return fmt.Sprintf("/test-%d-%d/", os.Getpid(), prefixes.Add(1)) }

// client returns a client of the package's cluster, closed after the test.
func client(t *testing.T) *clientv3.Client {
	t.Helper()
	c := etcdcluster.Shared(t, cluster)
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// open returns an etcd store on prefix with its own bbolt chunk store.
func open(t *testing.T, prefix string) *Store {
	t.Helper()
	s, _ := openWithChunks(t, prefix)
	return s
}

// openWithChunks is open that also returns the chunk store.
func openWithChunks(t *testing.T, prefix string) (*Store, *store.Store) {
	t.Helper()
	chunks, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chunks.Close() })
	s, err := New(Config{Client: client(t), Prefix: prefix, Chunks: chunks})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, chunks
}

// TestContract runs the model.Store contract on the three-member etcd.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) model.Store { return open(t, newPrefix()) })
}

// appendHistory is an update that appends one history entry to d-1.
func appendHistory(actor string, between func()) func(model.Tx) error {
	return func(tx model.Tx) error {
		d, err := tx.Deployment("d-1")
		if err != nil {
			return err
		}
		between()
		d.History = append(d.History, model.Transition{State: d.State, Actor: actor})
		return tx.PutDeployment(d)
	}
}

// TestTwoControllersOneDeployment: two stores on one prefix (two
// controllers) update the same deployment at once; the one whose read went
// stale is Aborted, and no write is lost.
func TestTwoControllersOneDeployment(t *testing.T) {
	prefix := newPrefix()
	a, b := open(t, prefix), open(t, prefix)
	if err := a.Update(func(tx model.Tx) error {
		return tx.PutDeployment(&model.Deployment{ID: "d-1", Environment: "production", State: model.Prepared})
	}); err != nil {
		t.Fatal(err)
	}
	// a reads, then b commits, then a commits: a must fail.
	errB := make(chan error, 1)
	errA := a.Update(appendHistory("a", func() { errB <- b.Update(appendHistory("b", func() {})) }))
	if err := <-errB; err != nil {
		t.Fatalf("b's update: %v", err)
	}
	if !errors.Is(errA, errkind.Aborted) {
		t.Fatalf("a's update after b's commit: %v, want Aborted", errA)
	}
	// Then both race many times; every success must be kept.
	var wg sync.WaitGroup
	var kept, aborted atomic.Int64
	for i, s := range []*Store{a, b, a, b} {
		wg.Go(func() {
			for j := range 10 {
				err := s.Update(appendHistory(fmt.Sprintf("%d-%d", i, j), func() {}))
				switch {
				case err == nil:
					kept.Add(1)
				case errors.Is(err, errkind.Aborted):
					aborted.Add(1)
				default:
					t.Errorf("update: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if err := a.View(func(tx model.Tx) error {
		d, err := tx.Deployment("d-1")
		if err == nil && int64(len(d.History)) != 1+kept.Load() {
			t.Errorf("%d history entries, want %d (b's first and every update that succeeded)", len(d.History), 1+kept.Load())
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d updates kept, %d aborted", kept.Load(), aborted.Load())
}

// TestConflicts: which concurrent changes by another controller make a
// transaction abort. a runs fn (reads), b commits change in between, then
// a commits its write.
func TestConflicts(t *testing.T) {
	seed := func(tx model.Tx) error {
		return errors.Join(tx.PutAgent(&model.Agent{Name: "fe-1"}), tx.PutAgent(&model.Agent{Name: "fe-2"}),
			tx.PutEnvironment(&model.Environment{Name: "production"}))
	}
	cases := []struct {
		name   string
		read   func(model.Tx) error
		change func(model.Tx) error
		want   error
	}{
		{"a key read, changed", func(tx model.Tx) error { _, err := tx.Agent("fe-1"); return err },
			func(tx model.Tx) error { return tx.PutAgent(&model.Agent{Name: "fe-1", Environment: "x"}) }, errkind.Aborted},
		{"a key read, deleted", func(tx model.Tx) error { _, err := tx.Agent("fe-1"); return err },
			func(tx model.Tx) error { return tx.DeleteAgent("fe-1") }, errkind.Aborted},
		{"a key read as missing, created", func(tx model.Tx) error { _, err := tx.Agent("fe-9"); return ignoreNotFound(err) },
			func(tx model.Tx) error { return tx.PutAgent(&model.Agent{Name: "fe-9"}) }, errkind.Aborted},
		{"a range listed, a key added", func(tx model.Tx) error { _, err := tx.Agents(); return err },
			func(tx model.Tx) error { return tx.PutAgent(&model.Agent{Name: "fe-3"}) }, errkind.Aborted},
		{"a range listed, a key deleted", func(tx model.Tx) error { _, err := tx.Agents(); return err },
			func(tx model.Tx) error { return tx.DeleteAgent("fe-2") }, errkind.Aborted},
		{"a deployment id reserved by both", func(tx model.Tx) error { _, err := tx.NextDeploymentID(); return err },
			func(tx model.Tx) error { _, err := tx.NextDeploymentID(); return err }, errkind.Aborted},
		{"an audit entry appended by both", func(tx model.Tx) error { return tx.AppendAudit(&model.AuditRecord{Seq: 1}) },
			func(tx model.Tx) error { return tx.AppendAudit(&model.AuditRecord{Seq: 1}) }, errkind.Aborted},
		{"another key changed", func(tx model.Tx) error { _, err := tx.Agent("fe-1"); return err },
			func(tx model.Tx) error { return tx.PutAgent(&model.Agent{Name: "fe-2", Environment: "x"}) }, nil},
		{"another collection changed", func(tx model.Tx) error { _, err := tx.Agents(); return err },
			func(tx model.Tx) error { return tx.PutEnvironment(&model.Environment{Name: "staging"}) }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prefix := newPrefix()
			a, b := open(t, prefix), open(t, prefix)
			if err := a.Update(seed); err != nil {
				t.Fatal(err)
			}
			err := a.Update(func(tx model.Tx) error {
				if err := c.read(tx); err != nil {
					return err
				}
				if err := b.Update(c.change); err != nil {
					t.Fatalf("b's change: %v", err)
				}
				return tx.PutEnvironment(&model.Environment{Name: "written-by-a"})
			})
			if !errors.Is(err, c.want) || c.want == nil && err != nil {
				t.Fatalf("a's update: %v, want %v", err, c.want)
			}
			_ = a.View(func(tx model.Tx) error {
				_, err := tx.Environment("written-by-a")
				if (err == nil) != (c.want == nil) {
					t.Errorf("a's write kept: %v; want kept only when a's commit succeeded", err == nil)
				}
				return nil
			})
		})
	}
}

func ignoreNotFound(err error) error {
	if errors.Is(err, errkind.NotFound) {
		return nil
	}
	return err
}
