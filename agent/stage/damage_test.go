package stage_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Damaged files on the agent's disk: a staged release repaired before it
// is activated, and a damaged copy of a chunk not used for another release.

func TestReverifyRepairsADamagedFileFetchingOnlyItsMissingChunks(t *testing.T) {
	files := map[string]string{
		"data/a.bin": bigContent(11, 500<<10),
		"data/b.bin": bigContent(12, 500<<10),
		"VERSION":    "v1\n",
	}
	const garbageAt = 300 << 10
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		// lost reports whether the chunk of a.bin at off, of size bytes, is lost.
		lost func(off, size int64) bool
	}{
		{"content changed", func(t *testing.T, dir string) {
			name := filepath.Join(dir, "data/a.bin")
			if err := os.Chmod(name, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(name, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("garbage"), garbageAt); err != nil {
				t.Fatal(err)
			}
		}, func(off, size int64) bool { return off < garbageAt+7 && garbageAt < off+size }},
		{"file removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "data/a.bin")); err != nil {
				t.Fatal(err)
			}
		}, func(int64, int64) bool { return true }},
		{"truncated and an extra file", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, "data/a.bin"), 10); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "extra"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, func(int64, int64) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			id, src, m := e.fake.release(t, files)
			if _, err := e.stage(t, id, nil); err != nil {
				t.Fatal(err)
			}
			dir := layout.ReleaseDir(e.root, "hello", id)
			tt.damage(t, dir)
			lost := map[manifest.ChunkID]bool{}
			for _, f := range m.Files {
				var off int64
				for _, c := range f.Chunks {
					if f.Path == "data/a.bin" && tt.lost(off, c.Size) {
						lost[c.ID] = true
					}
					off += c.Size
				}
			}
			p, err := e.st.Reverify(context.Background(), []stage.Release{{Application: "hello", ID: id}})
			if err != nil {
				t.Fatal(err)
			}
			sameTree(t, src, dir)
			if p.TransferredBytes <= 0 {
				t.Errorf("fetched %d bytes; want the lost chunks", p.TransferredBytes)
			}
			for _, c := range m.ChunkIDs() {
				want := 1
				if lost[c] {
					want = 2
				}
				if got := e.fake.requests(c); got != want {
					t.Errorf("chunk %s requested %d times, want %d", c, got, want)
				}
			}
		})
	}
}

func TestDamagedLocalChunkIsFetchedNotCopied(t *testing.T) {
	e := newEnv(t, nil)
	id1, _, m1 := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id1, nil); err != nil {
		t.Fatal(err)
	}
	// Damage v1's copy of a chunk that v2 shares.
	var big *manifest.File
	for i := range m1.Files {
		if m1.Files[i].Path == "data/big.bin" {
			big = &m1.Files[i]
		}
	}
	bad := big.Chunks[0].ID
	name := filepath.Join(layout.ReleaseDir(e.root, "hello", id1), "data", "big.bin")
	if err := os.Chmod(name, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("garbage"), 10); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	files2 := maps.Clone(sampleFiles)
	files2["VERSION"] = "v2\n"
	id2, src2, _ := e.fake.release(t, files2)
	if _, err := e.stage(t, id2, nil); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src2, layout.ReleaseDir(e.root, "hello", id2))
	if n := e.fake.requests(bad); n != 2 {
		t.Errorf("the damaged chunk was requested %d times, want 2 (v1, then v2 instead of the damaged copy)", n)
	}
	if n := e.fake.requests(big.Chunks[1].ID); n != 1 {
		t.Errorf("an intact shared chunk was requested %d times, want 1", n)
	}
}
