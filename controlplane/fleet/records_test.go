package fleet

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/controlplane/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/poll"
)

// gatedStore is a real bbolt store whose next Update waits for release
// once gate is armed, and which counts its Updates.
type gatedStore struct {
	model.Store
	mu      sync.Mutex
	updates int
	gate    chan struct{} // nil: Updates go through
	entered chan struct{} // closed when an Update waits at the gate
}

// arm makes the next Update wait until the returned channel is closed.
func (g *gatedStore) arm() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.entered = make(chan struct{}), make(chan struct{})
	return g.gate
}

func (g *gatedStore) Update(fn func(model.Tx) error) error {
	g.mu.Lock()
	g.updates++
	gate, entered := g.gate, g.entered
	g.gate = nil
	g.mu.Unlock()
	if gate != nil {
		close(entered)
		<-gate
	}
	return g.Store.Update(fn)
}

func (g *gatedStore) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.updates
}

func newGatedFleet(t *testing.T) (*Fleet, *gatedStore) {
	t.Helper()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	g := &gatedStore{Store: s}
	f, err := New(Config{Store: g})
	if err != nil {
		t.Fatal(err)
	}
	return f, g
}

// queued is how many records wait in f's groups.
func queued(f *Fleet) int {
	f.records.mu.Lock()
	defer f.records.mu.Unlock()
	n := 0
	for _, g := range f.records.waiting {
		n += len(g.recs)
	}
	return n
}

// TestConnectsAreRecordedInGroups: agents that connect while a commit
// runs are recorded together, maxRecordGroup per transaction, and every
// Connect returns only once its record is stored.
func TestConnectsAreRecordedInGroups(t *testing.T) {
	for _, n := range []int{1, maxRecordGroup, maxRecordGroup + 1, 3*maxRecordGroup + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f, g := newGatedFleet(t)
			release := g.arm()
			first := make(chan error, 1)
			go func() {
				_, err := f.Connect(Hello{Name: "fe-first", Environment: "prod"})
				first <- err
			}()
			<-g.entered // the first commit holds the store
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() {
					if _, err := f.Connect(Hello{Name: fmt.Sprintf("fe-%d", i), Environment: "prod"}); err != nil {
						errs <- err
					}
				})
			}
			if err := poll.Until(t.Context(), 10*time.Second, func() error {
				if q := queued(f); q < n {
					return fmt.Errorf("%d of %d records queued", q, n)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			want := 1 + (n+maxRecordGroup-1)/maxRecordGroup
			if got := g.count(); got != want {
				t.Errorf("%d commits for %d agents connecting behind one, want %d", got, n, want)
			}
			views, err := f.Agents("prod")
			if err != nil {
				t.Fatal(err)
			}
			if len(views) != n+1 {
				t.Errorf("%d agents recorded, want %d", len(views), n+1)
			}
		})
	}
}

// TestRemoveRefusesAConnectingAgent: while an agent's Connect writes its
// record, Remove refuses it as it refuses a connected one, and changes
// nothing.
func TestRemoveRefusesAConnectingAgent(t *testing.T) {
	f, g := newGatedFleet(t)
	if _, err := f.Connect(Hello{Name: "fe1", Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	f.Disconnect(f.sessions["fe1"])
	release := g.arm()
	connected := make(chan error, 1)
	go func() {
		_, err := f.Connect(Hello{Name: "fe1", Environment: "prod"})
		connected <- err
	}()
	<-g.entered
	if _, err := f.Remove("prod", "fe1"); !errors.Is(err, errkind.FailedPrecondition) {
		t.Fatalf("Remove of a connecting agent: %v, want FailedPrecondition", err)
	}
	close(release)
	if err := <-connected; err != nil {
		t.Fatal(err)
	}
	if views := f.Connected("prod"); len(views) != 1 {
		t.Fatalf("connected: %v, want fe1", views)
	}
}

// TestFleetAnswersInsideAStoreWrite: deployment code asks the fleet
// (Connected) inside its store transactions; a Remove and a Connect that
// wait for the store's write lock meanwhile must not hold the fleet's
// mutex, or both would wait forever.
func TestFleetAnswersInsideAStoreWrite(t *testing.T) {
	f, g := newGatedFleet(t)
	if _, err := f.Connect(Hello{Name: "fe1", Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	f.Disconnect(f.sessions["fe1"])
	inTx, answered := make(chan struct{}), make(chan int, 1)
	proceed := make(chan struct{})
	go func() {
		_ = g.Store.Update(func(model.Tx) error { // the store's write lock, as a deployment transaction holds it
			close(inTx)
			<-proceed
			answered <- len(f.Connected("prod"))
			return nil
		})
	}()
	<-inTx
	before := g.count()
	removed, connected := make(chan error, 1), make(chan error, 1)
	go func() { _, err := f.Remove("prod", "fe1"); removed <- err }()
	go func() { _, err := f.Connect(Hello{Name: "fe2", Environment: "prod"}); connected <- err }()
	if err := poll.Until(t.Context(), 10*time.Second, func() error { // both wait for the write lock
		if n := g.count() - before; n < 2 {
			return fmt.Errorf("%d of 2 waiting for the store", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	select {
	case <-answered:
	case <-time.After(30 * time.Second):
		// Not t.Fatal: its cleanup would close the store, which waits for
		// the deadlocked transaction. The panic prints every goroutine.
		panic("the fleet did not answer inside a store write while Remove and Connect waited for the store: deadlock")
	}
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	if err := <-connected; err != nil {
		t.Fatal(err)
	}
}
