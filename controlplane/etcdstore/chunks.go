package etcdstore

import (
	"fmt"

	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Chunks never go to etcd: each chunk method runs at once in a transaction
// of the local chunk store (Config.Chunks), not in the etcd transaction.
// Chunks are content-addressed and immutable, so a chunk written by a
// transaction that then aborts is only unreferenced, and collected like
// any other.

func (tx *Tx) chunks(write bool, fn func(model.Tx) error) error {
	c := tx.s.cfg.Chunks
	if c == nil {
		return fmt.Errorf("this etcd store has no local chunk store: %w", errkind.FailedPrecondition)
	}
	if write {
		return c.Update(fn)
	}
	return c.View(fn)
}

// HasChunk says whether the local chunk store has the chunk.
func (tx *Tx) HasChunk(id manifest.ChunkID) bool {
	has := false
	_ = tx.chunks(false, func(c model.Tx) error { has = c.HasChunk(id); return nil })
	return has
}

// Chunk returns a copy of a chunk's data; NotFound if unknown.
func (tx *Tx) Chunk(id manifest.ChunkID) ([]byte, error) {
	var data []byte
	err := tx.chunks(false, func(c model.Tx) (err error) { data, err = c.Chunk(id); return err })
	if err != nil && tx.s.cfg.Chunks == nil {
		return nil, fmt.Errorf("chunk %s does not exist: %w", id, errkind.NotFound)
	}
	return data, err
}

// PutChunk stores a chunk in the local chunk store unless it is there.
func (tx *Tx) PutChunk(id manifest.ChunkID, data []byte) error {
	if !tx.writable {
		return fmt.Errorf("write of chunk %s in a read-only transaction: %w", id, errkind.FailedPrecondition)
	}
	return tx.chunks(true, func(c model.Tx) error { return c.PutChunk(id, data) })
}

// DeleteChunk deletes a chunk from the local chunk store (absent is fine).
func (tx *Tx) DeleteChunk(id manifest.ChunkID) error {
	if !tx.writable {
		return fmt.Errorf("deletion of chunk %s in a read-only transaction: %w", id, errkind.FailedPrecondition)
	}
	return tx.chunks(true, func(c model.Tx) error { return c.DeleteChunk(id) })
}
