package stage

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// BenchmarkFill measures the agent's write path alone, chunks already in
// memory: verify each chunk (SHA-256), write it into its file, fsync and
// record every DefaultCommitBytes. It is the ceiling of stage 1 on this
// machine's CPU and disk, whatever the network does.
//
//	go test -run '^$' -bench Fill -benchtime 3x ./agent/stage
func BenchmarkFill(b *testing.B) {
	const fileSize, files = 64 << 20, 4
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	var chunks []manifest.Chunk
	m := &manifest.Manifest{Application: "bench"}
	for i := range files {
		f := manifest.File{Path: "data/" + string(rune('a'+i)), Mode: 0o644}
		for off := int64(0); off < fileSize; off += manifest.AvgChunkSize {
			data := make([]byte, manifest.AvgChunkSize)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			c := manifest.Chunk{ID: manifest.HashChunk(data), Data: data}
			chunks = append(chunks, c)
			f.Chunks = append(f.Chunks, manifest.ChunkRef{ID: c.ID, Size: int64(len(data))})
			f.Size += int64(len(data))
		}
		m.Files = append(m.Files, f)
	}
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.SetBytes(m.Size())
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "release")
		if err := createSkeleton(dir, m, nil); err != nil {
			b.Fatal(err)
		}
		done := newBitmap(len(chunks))
		record := func(positions []int) error {
			for _, i := range positions {
				done.set(i)
			}
			return st.Update(func(tx *store.Tx) error { return tx.PutProgress("bench", "r", done) })
		}
		b.StartTimer()
		f := newFill(targets(dir, m), done, DefaultCommitBytes, record, nil)
		for _, c := range chunks {
			if manifest.HashChunk(c.Data) != c.ID {
				b.Fatal("bad hash")
			}
			if err := f.write(c.ID, c.Data, true); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.finish(false); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = os.RemoveAll(dir)
		b.StartTimer()
	}
}
