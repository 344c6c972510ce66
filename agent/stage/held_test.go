package stage_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// TestReadHeld reads back, in the order asked, the chunks of a staged
// release, skipping a chunk the agent never had, one asked twice, and the
// chunks of a file damaged on disk.
func TestReadHeld(t *testing.T) {
	e := newEnv(t, nil)
	id, src, m := e.fake.release(t, sampleFiles)
	if _, err := e.stage(t, id, nil); err != nil {
		t.Fatal(err)
	}
	content := map[manifest.ChunkID][]byte{}
	for _, f := range m.Files {
		b, _ := os.ReadFile(filepath.Join(src, filepath.FromSlash(f.Path)))
		var off int64
		for _, c := range f.Chunks {
			content[c.ID] = b[off : off+c.Size]
			off += c.Size
		}
	}
	var big []manifest.ChunkID // data/big.bin's, damaged below
	for _, f := range m.Files {
		if f.Path == "data/big.bin" {
			for _, c := range f.Chunks {
				big = append(big, c.ID)
			}
		}
	}
	unknown := manifest.HashChunk([]byte("never staged"))
	all := m.ChunkIDs()
	ask := append(append([]manifest.ChunkID{unknown}, all...), all[0])

	for _, tc := range []struct {
		name   string
		damage bool
		want   []manifest.ChunkID
	}{
		{name: "intact", want: all},
		{name: "a damaged file", damage: true, want: without(all, big)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.damage {
				p := filepath.Join(layout.ReleaseDir(e.root, "hello", id), "data", "big.bin")
				if err := os.Chmod(p, 0o644); err != nil {
					t.Fatal(err)
				}
				b, _ := os.ReadFile(p)
				for i := 0; i < len(b); i += 4096 {
					b[i] ^= 0xff
				}
				if err := os.WriteFile(p, b, 0o444); err != nil {
					t.Fatal(err)
				}
			}
			var got []manifest.ChunkID
			err := e.st.ServeHeld(context.Background(), ask, nil, func(id manifest.ChunkID, data []byte) error {
				if !bytes.Equal(data, content[id]) {
					t.Errorf("chunk %s: wrong content", id)
				}
				got = append(got, id)
				return nil
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d chunks, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("chunk %d is %s, want %s (the order asked)", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// without returns the distinct ids of all, in order, that are not in drop.
func without(all, drop []manifest.ChunkID) []manifest.ChunkID {
	out, seen := []manifest.ChunkID{}, map[manifest.ChunkID]bool{}
	for _, id := range drop {
		seen[id] = true
	}
	for _, id := range all {
		if !seen[id] {
			out = append(out, id)
			seen[id] = true
		}
	}
	return out
}
