package manifest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func chunks(t *testing.T, data []byte) [][]byte {
	t.Helper()
	var out [][]byte
	c := NewChunker(bytes.NewReader(data))
	for {
		b, err := c.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), b...))
	}
}

func TestChunkerSizesAndReassembly(t *testing.T) {
	for _, n := range []int{0, 1, MinChunkSize, MaxChunkSize + 1, 5 << 20} {
		data := randomBytes(uint64(n), n)
		got := chunks(t, data)
		if !bytes.Equal(bytes.Join(got, nil), data) {
			t.Fatalf("n=%d: chunks do not reassemble the input", n)
		}
		for i, c := range got {
			if len(c) > MaxChunkSize || (len(c) < MinChunkSize && i != len(got)-1) {
				t.Fatalf("n=%d: chunk %d has %d bytes", n, i, len(c))
			}
		}
		if n == 5<<20 {
			avg := n / len(got)
			if avg < AvgChunkSize/2 || avg > AvgChunkSize*2 {
				t.Errorf("average chunk size %d, want about %d", avg, AvgChunkSize)
			}
		}
	}
}

// TestChunkerStableUnderInsertion checks the point of content-defined
// chunking: inserting bytes near the start changes only the chunks around
// the insertion.
func TestChunkerStableUnderInsertion(t *testing.T) {
	base := randomBytes(42, 8<<20)
	edited := append(append(append([]byte(nil), base[:1000]...), []byte("inserted bytes shift everything after them")...), base[1000:]...)
	before := map[ChunkID]bool{}
	for _, c := range chunks(t, base) {
		before[HashChunk(c)] = true
	}
	after := chunks(t, edited)
	var newBytes int
	for _, c := range after {
		if !before[HashChunk(c)] {
			newBytes += len(c)
		}
	}
	if newBytes > 2*MaxChunkSize {
		t.Fatalf("an insertion of 43 bytes produced %d bytes of new chunks, want at most %d", newBytes, 2*MaxChunkSize)
	}
}

type memSink struct {
	mu     sync.Mutex
	chunks map[ChunkID][]byte
}

func (s *memSink) PutChunks(cs []Chunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		if HashChunk(c.Data) != c.ID {
			return errors.New("id does not match data")
		}
		s.chunks[c.ID] = c.Data
	}
	return nil
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuildAndRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"VERSION": "v1\n", "bin/app": string(randomBytes(1, 300<<10)), "static/a.css": "body{}"})
	if err := os.Chmod(filepath.Join(dir, "bin/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../VERSION", filepath.Join(dir, "static/version")); err != nil {
		t.Fatal(err)
	}
	spec := appspec.Spec{Name: "app", Run: appspec.Run{Command: "bin/app"}}
	sink := &memSink{chunks: map[ChunkID][]byte{}}
	m, err := Build(context.Background(), dir, "app", spec, sink)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size() != int64(3+300<<10+6) {
		t.Errorf("Size = %d", m.Size())
	}
	byPath := map[string]File{}
	for _, f := range m.Files {
		byPath[f.Path] = f
	}
	if byPath["bin/app"].Mode != 0o755 || byPath["bin"].Mode != fs.ModeDir|0o755 || byPath["static/version"].Link != "../VERSION" {
		t.Errorf("modes or links not kept: %+v", byPath)
	}
	for _, id := range m.ChunkIDs() {
		if _, ok := sink.chunks[id]; !ok {
			t.Fatalf("chunk %v not given to the sink", id)
		}
	}
	enc := m.Encode()
	back, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID() != ReleaseID(enc) || m.ID() != ReleaseID(enc) {
		t.Fatal("release id changes across a round trip")
	}
	// Same content, same id.
	again, err := Build(context.Background(), dir, "app", spec, sink)
	if err != nil || again.ID() != m.ID() {
		t.Fatalf("rebuild: id %s, want %s (%v)", again.ID(), m.ID(), err)
	}
	writeTree(t, dir, map[string]string{"VERSION": "v2\n"})
	changed, err := Build(context.Background(), dir, "app", spec, sink)
	if err != nil || changed.ID() == m.ID() {
		t.Fatalf("changed content kept id %s (%v)", m.ID(), err)
	}
}

func TestBuildRefusesHostileOutput(t *testing.T) {
	tests := []struct {
		name, link string
	}{
		{"absolute", "/etc/passwd"},
		{"escapes", "../../outside"},
		{"escapes from subdir", "sub/../../../x"},
		{"escapes through another link", "d/d/d/../../.."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"a": "x"})
			if err := os.Symlink(".", filepath.Join(dir, "d")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tt.link, filepath.Join(dir, "evil")); err != nil {
				t.Fatal(err)
			}
			sink := &memSink{chunks: map[ChunkID][]byte{}}
			_, err := Build(context.Background(), dir, "app", appspec.Spec{}, sink)
			if !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
		})
	}
}

func TestDecodeRefusesBadManifests(t *testing.T) {
	id := HashChunk([]byte("x"))
	tests := map[string]Manifest{
		"dotdot":        {Files: []File{{Path: "../x"}}},
		"absolute":      {Files: []File{{Path: "/x"}}},
		"unclean":       {Files: []File{{Path: "a//b"}}},
		"duplicate":     {Files: []File{{Path: "a", Mode: fs.ModeDir}, {Path: "a", Mode: fs.ModeDir}}},
		"size mismatch": {Files: []File{{Path: "a", Size: 2, Chunks: []ChunkRef{{ID: id, Size: 1}}}}},
		"escaping link": {Files: []File{{Path: "l", Mode: fs.ModeSymlink, Link: "../x"}}},
		"device":        {Files: []File{{Path: "d", Mode: fs.ModeDevice}}},
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(m.Encode()); !errors.Is(err, errkind.InvalidArgument) {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
		})
	}
	if _, err := Decode([]byte(`{"application":"a","bogus":1}`)); !errors.Is(err, errkind.InvalidArgument) {
		t.Fatalf("unknown field: err = %v", err)
	}
}

func BenchmarkChunker(b *testing.B) {
	data := randomBytes(7, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c := NewChunker(bytes.NewReader(data))
		for {
			if _, err := c.Next(); err != nil {
				break
			}
		}
	}
}
