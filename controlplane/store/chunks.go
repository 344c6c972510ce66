package store

import "github.com/cutover-dev/cutover/pkg/manifest"

var _ manifest.ChunkSink = (*Store)(nil)

// PutChunks stores chunks in one durable transaction, skipping those already
// present. It is the build's manifest.ChunkSink.
func (s *Store) PutChunks(chunks []manifest.Chunk) error {
	return s.Update(func(tx *Tx) error {
		for _, c := range chunks {
			if err := tx.PutChunk(c.ID, c.Data); err != nil {
				return err
			}
		}
		return nil
	})
}
