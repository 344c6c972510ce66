package stage

import (
	"path/filepath"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
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

// location is a place on this agent's disk that held a chunk when it was
// recorded: a file and the chunk's offset in it. Whoever reads it checks the
// hash: files can be damaged, replaced or removed since.
type location struct {
	path string
	off  int64
}

// maxLocations bounds how many places the index keeps per chunk.
const maxLocations = 3

// index is where the chunks this agent holds are, from its records.
type index map[manifest.ChunkID][]location

func (x index) add(id manifest.ChunkID, l location) {
	if len(x[id]) < maxLocations {
		x[id] = append(x[id], l)
	}
}

// localIndex returns where the agent whose store is st and whose --root
// is root holds the chunks that want reports as wanted (nil: all): in the
// files of its staged releases, and at the positions already written of
// the releases being staged. Filtering keeps the index as small as what is
// being staged, however many releases the agent keeps.
func localIndex(st *store.Store, root string, want func(manifest.ChunkID) bool) (index, error) {
	x := index{}
	err := st.View(func(tx *store.Tx) error {
		recs, err := tx.Releases()
		if err != nil {
			return err
		}
		for _, rec := range recs {
			m, err := manifest.Decode(rec.Manifest)
			if err != nil {
				continue // never staged; its chunks are nowhere
			}
			r := Release{Application: rec.Application, ID: rec.ID}
			dir, done := layout.ReleaseDir(root, r.Application, r.ID), bitmap(nil)
			if rec.State != store.ReleaseStaged {
				bits, ok := tx.Progress(r.Application, r.ID)
				if !ok {
					continue
				}
				dir, done = stagingDir(root, r), bits
			}
			for i, p := range positions(m) {
				if (done == nil || done.has(i)) && (want == nil || want(p.id)) {
					x.add(p.id, location{path: filepath.Join(dir, filepath.FromSlash(m.Files[p.file].Path)), off: p.off})
				}
			}
		}
		return nil
	})
	return x, err
}

// Held returns the ids of the chunks an agent holds, read from its store:
// those of its staged releases and those already written of the releases it
// is staging. It reads records only (no file is checked); tests and the
// benchmark use it on a stopped agent's store.
func Held(st *store.Store) (map[manifest.ChunkID]bool, error) {
	x, err := localIndex(st, "", nil)
	held := make(map[manifest.ChunkID]bool, len(x))
	for id := range x {
		held[id] = true
	}
	return held, err
}

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
