package stage

import (
	"sync"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

// arrivals tells the materializer which of the chunks a fetch brings are in
// the store yet, so that the files of a release are written while the rest
// of it arrives. A nil *arrivals means every chunk is in the store already.
type arrivals struct {
	mu      sync.Mutex
	changed *sync.Cond
	pending map[manifest.ChunkID]bool // to be fetched by this stage
	fresh   map[manifest.ChunkID]bool // committed by this stage (verified a moment ago)
	done    bool                      // the fetch ended
	err     error                     // how, if it failed
}

// newArrivals expects the chunks missing.
func newArrivals(missing []manifest.ChunkID) *arrivals {
	a := &arrivals{pending: make(map[manifest.ChunkID]bool, len(missing)), fresh: make(map[manifest.ChunkID]bool, len(missing))}
	a.changed = sync.NewCond(&a.mu)
	for _, id := range missing {
		a.pending[id] = true
	}
	return a
}

// committed records chunks committed by the fetch.
func (a *arrivals) committed(chunks []Received) {
	if a == nil {
		return
	}
	a.mu.Lock()
	for _, c := range chunks {
		a.fresh[c.ID] = true
	}
	a.mu.Unlock()
	a.changed.Broadcast()
}

// end records the end of the fetch: every chunk is in the store if err is nil.
func (a *arrivals) end(err error) {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.done, a.err = true, err
	a.mu.Unlock()
	a.changed.Broadcast()
}

// wait blocks until chunk id is in the store, or the fetch failed (its
// error). fresh says the chunk was verified by this stage.
func (a *arrivals) wait(id manifest.ChunkID) (fresh bool, err error) {
	if a == nil {
		return false, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.pending[id] && !a.fresh[id] && !a.done {
		a.changed.Wait()
	}
	if a.pending[id] && !a.fresh[id] && a.err != nil {
		return false, a.err
	}
	return a.fresh[id], nil
}
