package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Chunks are stored in two buckets: chunk_data holds the data under a
// sequence number, so that a new chunk is appended at the end of the bucket
// (leaves filled completely, never split or rewritten), and chunk_ids maps
// each chunk id to its sequence number. With the data keyed by the (random)
// id, every insert rewrote a leaf together with its neighbours' 64 KiB
// values.

var _ manifest.ChunkSink = (*Store)(nil)

// PutChunks stores chunks in one durable transaction, skipping those already
// present. It is the build's manifest.ChunkSink.
func (s *Store) PutChunks(chunks []manifest.Chunk) error {
	return s.update(func(tx *Tx) error {
		for _, c := range chunks {
			if err := tx.PutChunk(c.ID, c.Data); err != nil {
				return err
			}
		}
		return nil
	})
}

// HasChunk says whether the chunk is stored.
func (tx *Tx) HasChunk(id manifest.ChunkID) bool {
	return tx.tx.Bucket(bucketChunkIDs).Get(id[:]) != nil
}

// Chunk returns a copy of a chunk's data; NotFound if unknown.
func (tx *Tx) Chunk(id manifest.ChunkID) ([]byte, error) {
	var b []byte
	if seq := tx.tx.Bucket(bucketChunkIDs).Get(id[:]); seq != nil {
		b = tx.tx.Bucket(bucketChunkData).Get(seq)
	}
	if b == nil {
		return nil, fmt.Errorf("chunk %s does not exist: %w", id, errkind.NotFound)
	}
	return bytes.Clone(b), nil
}

// PutChunk stores a chunk unless it is already there.
func (tx *Tx) PutChunk(id manifest.ChunkID, data []byte) error {
	return appendChunk(tx.tx.Bucket(bucketChunkIDs), tx.tx.Bucket(bucketChunkData), id[:], data)
}

// DeleteChunk deletes a stored chunk (absent is fine), e.g. one found
// corrupt: a build that has it stores it again.
func (tx *Tx) DeleteChunk(id manifest.ChunkID) error {
	ids := tx.tx.Bucket(bucketChunkIDs)
	seq := ids.Get(id[:])
	if seq == nil {
		return nil
	}
	if err := tx.tx.Bucket(bucketChunkData).Delete(bytes.Clone(seq)); err != nil {
		return err
	}
	return ids.Delete(id[:])
}

// appendChunk stores data under the next sequence number of dat and indexes
// it in ids, unless ids already has the chunk.
func appendChunk(ids, dat *bolt.Bucket, id, data []byte) error {
	if ids.Get(id) != nil {
		return nil
	}
	seq, err := dat.NextSequence()
	if err != nil {
		return err
	}
	dat.FillPercent = 1 // keys only ever grow: fill each leaf completely
	if err := dat.Put(u64(seq), data); err != nil {
		return err
	}
	return ids.Put(id, u64(seq))
}

// deleteChunks deletes the stored chunks for which drop returns true and
// says how many and how many bytes.
func (tx *Tx) deleteChunks(drop func(manifest.ChunkID) bool) (n int, size int64, err error) {
	ids, dat := tx.tx.Bucket(bucketChunkIDs), tx.tx.Bucket(bucketChunkData)
	var keys, seqs [][]byte
	err = ids.ForEach(func(k, seq []byte) error {
		if len(k) == len(manifest.ChunkID{}) && drop(manifest.ChunkID(k)) {
			keys, seqs = append(keys, bytes.Clone(k)), append(seqs, bytes.Clone(seq))
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	for i, k := range keys {
		size += int64(len(dat.Get(seqs[i])))
		if err := dat.Delete(seqs[i]); err != nil {
			return 0, 0, err
		}
		if err := ids.Delete(k); err != nil {
			return 0, 0, err
		}
	}
	return len(keys), size, nil
}

// migrateBatchBytes is about how much chunk data one transaction of
// copyChunksBySequence copies.
var migrateBatchBytes = 64 << 20

// copyChunksBySequence copies the chunks of the schema-2 bucket chunks into
// chunk_ids and chunk_data, in transactions of about migrateBatchBytes (one
// transaction would hold every chunk of the file in memory), leaving the old
// bucket as it is: until the migration that deletes it commits, the file is
// still a complete schema-2 file. Run again after a crash, or after an older
// controller changed the old bucket, it copies only what chunk_ids lacks.
func copyChunksBySequence(db *bolt.DB) error {
	var after []byte
	for {
		next, err := copyChunkBatch(db, after, migrateBatchBytes)
		if err != nil || next == nil {
			return err
		}
		after = next
	}
}

// copyChunkBatch copies, in one transaction, about limit bytes of old chunks
// whose ids sort after the key after (nil: from the first), and returns the
// last id it copied (nil: it reached the end).
func copyChunkBatch(db *bolt.DB, after []byte, limit int) (last []byte, err error) {
	err = db.Update(func(tx *bolt.Tx) error {
		old := tx.Bucket(bucketChunks)
		if old == nil {
			return nil
		}
		ids, dat, err := createChunkBuckets(tx)
		if err != nil {
			return err
		}
		c := old.Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for n := 0; k != nil && n < limit; k, v = c.Next() {
			if err := appendChunk(ids, dat, k, v); err != nil {
				return err
			}
			n += len(v)
			last = bytes.Clone(k)
		}
		if k == nil {
			last = nil
		}
		return nil
	})
	return last, err
}

// chunksBySequence is migration 0003: the chunks have been copied (by
// copyChunksBySequence, before it); it copies whatever is left and deletes
// the old bucket.
func chunksBySequence(tx *bolt.Tx) error {
	ids, dat, err := createChunkBuckets(tx)
	if err != nil {
		return err
	}
	old := tx.Bucket(bucketChunks)
	if old == nil {
		return nil
	}
	if err := old.ForEach(func(k, v []byte) error { return appendChunk(ids, dat, k, v) }); err != nil {
		return err
	}
	return tx.DeleteBucket(bucketChunks)
}

// createChunkBuckets returns chunk_ids and chunk_data, creating them if
// needed.
func createChunkBuckets(tx *bolt.Tx) (ids, dat *bolt.Bucket, err error) {
	if ids, err = tx.CreateBucketIfNotExists(bucketChunkIDs); err != nil {
		return nil, nil, err
	}
	dat, err = tx.CreateBucketIfNotExists(bucketChunkData)
	return ids, dat, err
}
