package stage_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/stage"
	"github.com/cutover-dev/cutover/pkg/errkind"
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
	_, big, name := stagedBig(t, e)
	// Damage v1's copy of a chunk that v2 shares.
	bad := big.Chunks[0].ID
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

// TestDamagedCopySourceIsCaughtByArm damages a chunk of v1 behind the
// agent's back, keeping the file read-only: v2, whose version of that
// file shares the chunk, copies it from v1 without hashing it (v1 was
// verified when staged and is read-only), and arm's check of v2 finds the
// damage, which Reverify repairs, fetching only that chunk.
func TestDamagedCopySourceIsCaughtByArm(t *testing.T) {
	e := newEnv(t, nil)
	_, big, name := stagedBig(t, e)
	bad := big.Chunks[0].ID
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[10] ^= 0xff
	for _, step := range []func() error{
		func() error { return os.Chmod(name, 0o644) },
		func() error { return os.WriteFile(name, b, 0o644) },
		func() error { return os.Chmod(name, 0o444) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	files2 := maps.Clone(sampleFiles)
	files2["data/big.bin"] = sampleFiles["data/big.bin"][:500<<10] + "changed at the end"
	id2, src2, _ := e.fake.release(t, files2)
	if _, err := e.stage(t, id2, nil); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.requests(bad); n != 1 {
		t.Fatalf("the damaged chunk was requested %d times, want 1 (v1 only: v2 copies it from v1, unhashed)", n)
	}
	v2 := []stage.Release{{Application: "hello", ID: id2}}
	if err := e.st.Check(v2); !errors.Is(err, errkind.FailedPrecondition) {
		t.Fatalf("arm's check of a release copied from a damaged chunk = %v, want FailedPrecondition", err)
	}
	if _, err := e.st.Reverify(context.Background(), v2); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Check(v2); err != nil {
		t.Errorf("after Reverify: %v", err)
	}
	sameTree(t, src2, layout.ReleaseDir(e.root, "hello", id2))
	if n := e.fake.requests(bad); n != 2 {
		t.Errorf("the damaged chunk was requested %d times, want 2 (v1, then the repair)", n)
	}
}

// stagedBig stages sampleFiles as v1 and returns its id, its manifest's
// data/big.bin and that file's name on disk.
func stagedBig(t *testing.T, e *env) (string, *manifest.File, string) {
	t.Helper()
	id1, _, m1 := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id1, nil); err != nil {
		t.Fatal(err)
	}
	for i := range m1.Files {
		if m1.Files[i].Path == "data/big.bin" {
			return id1, &m1.Files[i], filepath.Join(layout.ReleaseDir(e.root, "hello", id1), "data", "big.bin")
		}
	}
	t.Fatal("no data/big.bin in the sample")
	return "", nil, ""
}
