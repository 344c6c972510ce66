package stage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/manifest"
	"github.com/cutover-dev/cutover/pkg/poll"
)

// gatedSource passes the first batch of chunks on, then holds the fetch
// until open is closed.
type gatedSource struct {
	stage.Source
	open    chan struct{}
	mu      sync.Mutex
	batches int
}

func (g *gatedSource) FetchChunks(ctx context.Context, releaseID string, ids, suspect []manifest.ChunkID, fn func([]stage.Received, func()) error) error {
	return g.Source.FetchChunks(ctx, releaseID, ids, suspect, func(b []stage.Received, release func()) error {
		g.mu.Lock()
		g.batches++
		first := g.batches == 1
		g.mu.Unlock()
		if !first {
			select {
			case <-g.open:
			case <-ctx.Done():
				release()
				return ctx.Err()
			}
		}
		return fn(b, release)
	})
}

// TestServeHeldWhileStaging serves the chunks a stage has written before
// any commit, then waits for the rest as they are written: a waiting
// ServeHeld gets every chunk of the release, each intact, once the fetch
// goes on; one that does not wait gets only what is written.
func TestServeHeldWhileStaging(t *testing.T) {
	gate := &gatedSource{open: make(chan struct{})}
	e := newEnv(t, func(c *stage.Config) {
		gate.Source = c.Source
		c.Source, c.CommitBytes = gate, 1<<30 // nothing is committed before the end
	})
	id, _, m := e.fake.release(t, sampleFiles)
	all := without(m.ChunkIDs(), nil)
	staged := make(chan error, 1)
	go func() {
		_, err := e.stage(t, id, nil)
		staged <- err
	}()

	read := func(wait func(manifest.ChunkID) bool) (map[manifest.ChunkID]bool, error) {
		got := map[manifest.ChunkID]bool{}
		err := e.st.ServeHeld(context.Background(), all, wait, func(c manifest.ChunkID, data []byte) error {
			if manifest.HashChunk(data) != c {
				return fmt.Errorf("chunk %s served with the wrong content", c)
			}
			if got[c] {
				return fmt.Errorf("chunk %s served twice", c)
			}
			got[c] = true
			return nil
		}, nil)
		return got, err
	}
	// The first batch is written, uncommitted: it is served.
	var early int
	err := poll.Until(context.Background(), 10*time.Second, func() error {
		got, err := read(nil)
		if err != nil {
			return poll.Permanent(err)
		}
		if early = len(got); early == 0 {
			return fmt.Errorf("nothing served yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if early >= len(all) {
		t.Fatalf("served %d of %d chunks while the fetch is held", early, len(all))
	}

	waited := make(chan error, 1)
	var got map[manifest.ChunkID]bool
	go func() {
		var err error
		got, err = read(func(manifest.ChunkID) bool { return true })
		waited <- err
	}()
	close(gate.open)
	if err := <-staged; err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Errorf("the waiting read got %d of %d chunks", len(got), len(all))
	}

	// Waiting for a chunk nobody writes calls idle before it waits and
	// every IdleEvery while it waits, and ends with the context: the test
	// ends it at the second call, whenever that comes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	unknown := manifest.HashChunk([]byte("never staged"))
	idles := 0
	err = e.st.ServeHeld(ctx, []manifest.ChunkID{unknown}, func(manifest.ChunkID) bool { return true },
		func(manifest.ChunkID, []byte) error { return nil }, func() error {
			if idles++; idles == 2 {
				cancel()
			}
			return nil
		})
	if !errors.Is(err, context.Canceled) || idles != 2 {
		t.Errorf("waiting for a chunk nobody writes: %v after %d calls of idle; want the context's error after 2", err, idles)
	}
}
