package stage

import (
	"path/filepath"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// A release's chunk positions are its regular files' chunks, numbered in
// manifest order: position 0 is the first chunk of the first regular file.
// The staging progress bitmap (store.Tx.Progress) has one bit per position.

// position is where one chunk of a release goes.
type position struct {
	file int // index into the manifest's Files
	off  int64
	id   manifest.ChunkID
	size int64
}

// positions lists m's chunk positions in order.
func positions(m *manifest.Manifest) []position {
	var out []position
	for i := range m.Files {
		var off int64
		for _, c := range m.Files[i].Chunks {
			out = append(out, position{file: i, off: off, id: c.ID, size: c.Size})
			off += c.Size
		}
	}
	return out
}

// bitmap is a set of positions.
type bitmap []byte

func newBitmap(n int) bitmap { return make(bitmap, (n+7)/8) }

func (b bitmap) has(i int) bool { return i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }

func (b bitmap) set(i int) { b[i/8] |= 1 << (i % 8) }

// stagingDir is where release r is filled before it is renamed into place.
func stagingDir(root string, r Release) string {
	return filepath.Join(layout.ReleasesDir(root, r.Application), stagingPrefix+r.ID)
}

// targets returns the regular files of m under dir as fill targets, each
// with the position of its first chunk (positions numbers them alike).
func targets(dir string, m *manifest.Manifest) []target {
	var out []target
	pos := 0
	for i := range m.Files {
		if f := &m.Files[i]; f.IsRegular() {
			out = append(out, target{path: filepath.Join(dir, filepath.FromSlash(f.Path)), file: f, first: pos})
			pos += len(f.Chunks)
		}
	}
	return out
}
