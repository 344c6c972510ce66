package transfer

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// checkSuspects checks the stored copy of chunks that reached an agent
// corrupt: a chunk whose content no longer hashes to its id is deleted from
// the store and from the cache (a new build of a release that has it stores
// it again), and checkSuspects fails with errkind.DataLoss naming it. A
// chunk that is intact was damaged on its way, and is simply sent again.
// Unknown ids are left to Send.
func (s *Sender) checkSuspects(ids []manifest.ChunkID) error {
	if len(ids) == 0 {
		return nil
	}
	// One read-write transaction: checking and deleting together, so that
	// two agents naming the same chunk at once delete and count it once.
	var corrupt []manifest.ChunkID
	err := s.cfg.Store.Update(func(tx model.Tx) error {
		corrupt = corrupt[:0]
		for _, id := range ids {
			if data, err := tx.Chunk(id); err != nil || manifest.HashChunk(data) == id {
				continue // unknown (Send says so) or intact
			}
			if err := tx.DeleteChunk(id); err != nil {
				return err
			}
			corrupt = append(corrupt, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check the chunks an agent received corrupt: %w", err)
	}
	if len(corrupt) == 0 {
		return nil
	}
	s.forget(corrupt)
	names := make([]string, len(corrupt))
	for i, id := range corrupt {
		names[i] = id.String()
		s.cfg.Log.Error("chunk in the store is corrupt (its content does not hash to its id); deleted", "chunk", names[i])
	}
	sort.Strings(names)
	s.metrics.corrupt.Add(float64(len(corrupt)))
	return fmt.Errorf("chunk(s) %s in the controller's store were corrupt and were deleted; prepare the deployment again (its build stores them again): %w",
		strings.Join(names, ", "), errkind.DataLoss)
}

// forget drops ids from the cache.
func (s *Sender) forget(ids []manifest.ChunkID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		e, ok := s.cache[id]
		if !ok {
			continue
		}
		select {
		case <-e.ready:
			delete(s.cache, id)
			s.bytes -= int64(len(e.chunk.Data))
		default: // still loading for a Send: it ends with it
		}
	}
}
