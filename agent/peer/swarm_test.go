package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/identity/identitytest"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// memHeld is a stager in memory: what its agent's fetch hands on is added
// (corrupt ids served with wrong bytes), and a ServeHeld that waits gets
// it as it comes.
type memHeld struct {
	mu      sync.Mutex
	chunks  map[manifest.ChunkID][]byte
	corrupt bool
	changed chan struct{}
	served  int // chunks handed on
}

func newMemHeld() *memHeld {
	return &memHeld{chunks: map[manifest.ChunkID][]byte{}, changed: make(chan struct{})}
}

func (h *memHeld) add(b []stage.Received) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range b {
		if manifest.HashChunk(c.Data) != c.ID {
			return fmt.Errorf("chunk %s handed on with the wrong content", c.ID)
		}
		h.chunks[c.ID] = append([]byte(nil), c.Data...) // c.Data is the receiver's buffer, reused after release
	}
	close(h.changed)
	h.changed = make(chan struct{})
	return nil
}

func (h *memHeld) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.chunks)
}

func (h *memHeld) ServeHeld(ctx context.Context, ids []manifest.ChunkID, wait func(manifest.ChunkID) bool, fn func(manifest.ChunkID, []byte) error, idle func() error) error {
	pending := ids
	for {
		h.mu.Lock()
		var rest []manifest.ChunkID
		var ready []manifest.ChunkID
		for _, id := range pending {
			if _, ok := h.chunks[id]; ok {
				ready = append(ready, id)
			} else if wait != nil && wait(id) {
				rest = append(rest, id)
			}
		}
		h.served += len(ready)
		data := make([][]byte, len(ready))
		for i, id := range ready {
			data[i] = h.chunks[id]
			if h.corrupt {
				data[i] = append([]byte("bad"), data[i]...)
			}
		}
		changed := h.changed
		h.mu.Unlock()
		for i, id := range ready {
			if err := fn(id, data[i]); err != nil {
				return err
			}
		}
		if pending = rest; len(pending) == 0 {
			return nil
		}
		if err := idle(); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// countingOrigin is a controller that counts how often each chunk is sent.
type countingOrigin struct {
	chunks map[manifest.ChunkID][]byte
	mu     sync.Mutex
	sent   map[manifest.ChunkID]int
}

func (o *countingOrigin) GetManifest(context.Context, string) ([]byte, error) { return nil, nil }

func (o *countingOrigin) FetchChunks(_ context.Context, _ string, ids, _ []manifest.ChunkID, fn func([]stage.Received, func()) error) error {
	for _, id := range ids {
		o.mu.Lock()
		o.sent[id]++
		o.mu.Unlock()
		if err := fn([]stage.Received{{ID: id, Data: o.chunks[id], WireBytes: int64(len(o.chunks[id]))}}, func() {}); err != nil {
			return err
		}
	}
	return nil
}

// TestSwarm stages one release on three agents at once, each owning one
// slice: the controller sends each chunk once and every agent gets every
// chunk. An owner that corrupts what it serves is dropped by the others,
// who fetch its slice from the controller instead.
func TestSwarm(t *testing.T) {
	ca := identitytest.NewCA(t, "cutover CA")
	all, ids := chunks(60)
	for _, tc := range []struct {
		name    string
		corrupt string // the agent whose server corrupts
		want    int    // sends of each chunk of the corrupt agent's slice
	}{
		{name: "every chunk sent once", want: 1},
		{name: "a corrupt owner", corrupt: "b", want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names := []string{"a", "b", "c"}
			o := &countingOrigin{chunks: all, sent: map[manifest.ChunkID]int{}}
			srcs, helds, peers := swarmAgents(t, ca, o, names, tc.corrupt)
			for i := range names {
				owners := make([]string, len(names))
				for k := range names {
					if k != i {
						owners[k] = names[k]
					}
				}
				srcs[i].Use("d1", []string{"r1"}, peers, &Swarm{Slices: len(names), Slice: i, Owners: owners})
			}
			stageAll(t, srcs, helds, ids)
			for _, id := range ids {
				want := 1
				if tc.corrupt != "" && SliceOf(id, len(names)) == 1 {
					want = tc.want
				}
				if got := o.sent[id]; got != want {
					t.Errorf("chunk %s of slice %d sent %d times by the controller, want %d", id, SliceOf(id, len(names)), got, want)
				}
			}
		})
	}
}

// serveSource starts src's peer server over held and returns its address.
func serveSource(t *testing.T, src *Source, held Held) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Server(held).Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	})
	return lis.Addr().String()
}

// TestSwarmOwnersFetchFromHolders: with a peer that holds the release
// whole, each owner fetches its own slice from it and the other slices
// from their owners: the holder serves the release once, not once per
// agent, and the controller sends nothing.
func TestSwarmOwnersFetchFromHolders(t *testing.T) {
	ca := identitytest.NewCA(t, "cutover CA")
	all, ids := chunks(40)
	o := &countingOrigin{chunks: all, sent: map[manifest.ChunkID]int{}}
	holder := newMemHeld()
	holder.chunks = all
	hid := newID(t, ca, "prod", "h")
	hsrc, err := NewSource(Config{Identity: func() Identity { return hid }, Controller: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hsrc.Close() })
	peers := []Peer{{Name: "h", Address: serveSource(t, hsrc, holder), Holds: true}}
	srcs, helds, agents := swarmAgents(t, ca, o, []string{"a", "b"}, "")
	peers = append(peers, agents...)
	srcs[0].Use("d1", []string{"r1"}, peers, &Swarm{Slices: 2, Slice: 0, Owners: []string{"", "b"}})
	srcs[1].Use("d1", []string{"r1"}, peers, &Swarm{Slices: 2, Slice: 1, Owners: []string{"a", ""}})
	stageAll(t, srcs, helds, ids)
	if len(o.sent) != 0 {
		t.Errorf("the controller sent %d chunks, want none", len(o.sent))
	}
	if holder.served != len(ids) {
		t.Errorf("the holder served %d chunks, want each of the %d once", holder.served, len(ids))
	}
}

// swarmAgents starts agents names of prod, each with a Source over o and a
// peer server over a memHeld (corrupting for the agent named corrupt).
func swarmAgents(t *testing.T, ca *identitytest.Cert, o stage.Source, names []string, corrupt string) ([]*Source, []*memHeld, []Peer) {
	t.Helper()
	srcs := make([]*Source, len(names))
	helds := make([]*memHeld, len(names))
	peers := make([]Peer, len(names))
	for i, n := range names {
		id := newID(t, ca, "prod", n)
		var err error
		if srcs[i], err = NewSource(Config{Identity: func() Identity { return id }, Controller: o, Stall: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srcs[i].Close() })
		helds[i] = newMemHeld()
		helds[i].corrupt = n == corrupt
		peers[i] = Peer{Name: n, Address: serveSource(t, srcs[i], helds[i])}
	}
	return srcs, helds, peers
}

// stageAll has every source fetch ids at once into its memHeld.
func stageAll(t *testing.T, srcs []*Source, helds []*memHeld, ids []manifest.ChunkID) {
	t.Helper()
	var g errgroup.Group
	for i := range srcs {
		g.Go(func() error {
			return srcs[i].FetchChunks(context.Background(), "r1", ids, nil, func(b []stage.Received, release func()) error {
				defer release()
				return helds[i].add(b)
			})
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, h := range helds {
		if h.count() != len(ids) {
			t.Errorf("agent %d holds %d of %d chunks", i, h.count(), len(ids))
		}
	}
}
