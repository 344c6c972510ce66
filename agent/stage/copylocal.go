package stage

import (
	"os"

	"github.com/cutover-dev/cutover/pkg/manifest"
)

// The first part of a fill: the chunks this agent already holds (found by
// localIndex, in fill.go) are copied from its disk into the fill's targets
// before anything is fetched.

// copyLocal writes the chunks that x says this agent holds, each read from
// the first of its locations whose content still hashes to its id. A chunk
// found nowhere intact is left for the fetch.
//
// With trustStaged, a chunk read from a file of a staged release other than
// the one being filled (which is staged again only when it was found
// damaged), still read-only (no write bit) and of its manifest's size, is
// not hashed again: it was verified when that release was staged, nothing
// on the agent writes a staged release's files since, and whatever else
// did is caught by arm's verify of the whole release (Reverify hashes
// every file and repairs, hashing what it copies). This is what clone.go
// does for whole files, applied to the unchanged chunks of a changed file.
func (f *fill) copyLocal(x index) error {
	buf := make([]byte, manifest.MaxChunkSize)
	sources := map[string]*os.File{}
	trusted := map[string]bool{} // by path: a staged release's file, read-only, of its size
	defer func() {
		for _, in := range sources {
			_ = in.Close()
		}
	}()
	f.prefetch(x)
	for _, id := range f.order {
		if !f.needs(id) {
			continue
		}
		data := buf[:f.size[id]]
		for _, l := range x[id] {
			if !readAt(sources, l, data) {
				continue // gone since it was recorded
			}
			if !f.trusts(sources, trusted, l) && manifest.HashChunk(data) != id {
				continue // changed since it was recorded
			}
			if err := f.write(id, data, false); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// trusts reports whether the chunk just read at l (its file open in
// sources) may be written without hashing it (see copyLocal). trusted
// keeps each path's answer, from one fstat of the open file.
func (f *fill) trusts(sources map[string]*os.File, trusted map[string]bool, l location) bool {
	if !f.trustStaged || l.staged == "" || l.staged == f.filling {
		return false
	}
	ok, seen := trusted[l.path]
	if !seen {
		info, err := sources[l.path].Stat()
		ok = err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o222 == 0 && info.Size() == l.fileSize
		trusted[l.path] = ok
	}
	return ok
}

// prefetchGap is how far apart two pieces of a source file copyLocal
// reads may be and still be read ahead as one.
const prefetchGap = 1 << 20

// prefetch asks the kernel to read ahead, in the background, the places
// copyLocal will read first (the first location of each chunk needed),
// in runs of nearby pieces: the release a v2 copies from may have left
// the page cache, and one chunk read at a time from the disk, each
// waited for, is what made a v2's copy slow.
func (f *fill) prefetch(x index) {
	type run struct{ off, end int64 }
	runs := map[string][]run{}
	for _, id := range f.order {
		if !f.needs(id) || len(x[id]) == 0 {
			continue
		}
		l, n := x[id][0], f.size[id]
		rs := runs[l.path]
		if k := len(rs) - 1; k >= 0 && l.off >= rs[k].off && l.off <= rs[k].end+prefetchGap {
			rs[k].end = max(rs[k].end, l.off+n)
		} else {
			rs = append(rs, run{l.off, l.off + n})
		}
		runs[l.path] = rs
	}
	for path, rs := range runs {
		in, err := os.Open(path)
		if err != nil {
			continue
		}
		for _, r := range rs {
			willNeed(in, r.off, r.end-r.off)
		}
		_ = in.Close()
	}
}
