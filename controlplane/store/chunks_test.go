package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

// benchChunks returns n chunks of 16–112 KiB (64 KiB on average), with
// random ids as a build makes them. Their data are slices of one random
// pool: the store does not look at the content, and the benchmark should
// not spend its memory on 1 GiB of distinct bytes.
func benchChunks(n int) []manifest.Chunk {
	rng := rand.New(rand.NewPCG(7, 8))
	pool := make([]byte, 8<<20)
	for i := 0; i < len(pool); i += 8 {
		binary.LittleEndian.PutUint64(pool[i:], rng.Uint64())
	}
	chunks := make([]manifest.Chunk, n)
	for i := range chunks {
		size := 16<<10 + rng.IntN(96<<10)
		off := rng.IntN(len(pool) - size)
		chunks[i] = manifest.Chunk{ID: sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))), Data: pool[off : off+size]}
	}
	return chunks
}

// BenchmarkPutChunks1GiB stores 1 GiB of new chunks the way a build does:
// PutChunks calls of about 4 MiB (manifest.Build's batches), each one
// durable transaction, into a new store.
//
//	go test -run '^$' -bench PutChunks1GiB -benchtime 3x ./controlplane/store
func BenchmarkPutChunks1GiB(b *testing.B) { benchmarkPutChunks(b, false) }

// BenchmarkPutChunks1GiBAfterCollect does the same into a store whose
// previous 1 GiB of chunks were just collected: the build reuses the freed
// pages (the freelist holds about 260,000 pages).
func BenchmarkPutChunks1GiBAfterCollect(b *testing.B) { benchmarkPutChunks(b, true) }

func benchmarkPutChunks(b *testing.B, collectFirst bool) {
	const total = 1 << 30
	chunks := benchChunks(total / (64 << 10))
	var size int64
	for _, c := range chunks {
		size += int64(len(c.Data))
	}
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		s, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if collectFirst {
			putInBatches(b, s, chunks) // then deleted: the pages are freed
			if err := s.update(func(tx *Tx) error {
				_, _, err := tx.deleteChunks(func(manifest.ChunkID) bool { return true })
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		putInBatches(b, s, chunks)
		b.StopTimer()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// putInBatches stores chunks with PutChunks calls of about 4 MiB.
func putInBatches(b *testing.B, s *Store, chunks []manifest.Chunk) {
	const batchBytes = 4 << 20
	for start := 0; start < len(chunks); {
		end, n := start, 0
		for end < len(chunks) && n < batchBytes {
			n += len(chunks[end].Data)
			end++
		}
		if err := s.PutChunks(chunks[start:end]); err != nil {
			b.Fatal(err)
		}
		start = end
	}
}

func TestMigrationKeysChunksBySequence(t *testing.T) {
	defer func(n int) { migrateBatchBytes = n }(migrateBatchBytes)
	migrateBatchBytes = 1 // one chunk per transaction

	// A schema-2 file with chunks keyed by id.
	dir := t.TempDir()
	want := map[manifest.ChunkID]string{}
	oldFile(t, dir, 2, func(db *bolt.DB) error {
		putOld := func(data string) error {
			id := manifest.HashChunk([]byte(data))
			want[id] = data
			return db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketChunks).Put(id[:], []byte(data)) })
		}
		for i := range 5 {
			if err := putOld(fmt.Sprint("chunk ", i)); err != nil {
				return err
			}
		}
		// A migration that stopped after copying one chunk, then an older
		// controller that stored another chunk.
		if _, err := copyChunkBatch(db, nil, 1); err != nil {
			return err
		}
		return putOld("stored by the older controller")
	})

	s := open(t, dir)
	defer s.Close()
	_ = s.view(func(tx *Tx) error {
		if v := tx.SchemaVersion(); v != SchemaVersion || v < 3 {
			t.Errorf("schema version = %d, want at least 3", v)
		}
		if tx.tx.Bucket(bucketChunks) != nil {
			t.Error("the old chunks bucket is still there")
		}
		for id, d := range want {
			got, err := tx.Chunk(id)
			if err != nil || string(got) != d || !tx.HasChunk(id) {
				t.Errorf("chunk %q = %q, %v", d, got, err)
			}
		}
		if n, m := countKeys(tx, bucketChunkIDs), countKeys(tx, bucketChunkData); n != len(want) || m != len(want) {
			t.Errorf("chunk_ids has %d keys, chunk_data %d; want %d each (nothing copied twice)", n, m, len(want))
		}
		return nil
	})
}

func TestPutChunkAppendsOnce(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	chunks := benchChunks(3)
	if err := s.PutChunks(append(chunks, chunks[1])); err != nil {
		t.Fatal(err)
	}
	if err := s.PutChunks(chunks[:1]); err != nil {
		t.Fatal(err)
	}
	_ = s.view(func(tx *Tx) error {
		var seqs []uint64
		_ = tx.tx.Bucket(bucketChunkData).ForEach(func(k, _ []byte) error {
			seqs = append(seqs, binary.BigEndian.Uint64(k))
			return nil
		})
		if !slices.Equal(seqs, []uint64{1, 2, 3}) {
			t.Errorf("chunk_data keys = %v, want 1 2 3 (appended in order, each chunk once)", seqs)
		}
		for _, c := range chunks {
			if got, err := tx.Chunk(c.ID); err != nil || !bytes.Equal(got, c.Data) {
				t.Errorf("chunk %s: %v", c.ID, err)
			}
		}
		return nil
	})
}

func countKeys(tx *Tx, bucket []byte) int {
	return tx.tx.Bucket(bucket).Stats().KeyN
}
