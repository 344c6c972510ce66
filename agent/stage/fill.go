package stage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/logging"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// A fill writes chunks into target files at their offsets: chunks found on
// this agent's disk first (copyLocal), then those fetched from the
// controller (fetchInto). Every chunk is verified against its id before it
// is written. Writes go to the page cache; a committer goroutine makes each
// batch durable (fsync of the files written, then record) and only then
// reports it, while the next batch is being written.

// fillStaging writes every chunk position of m that done lacks into the
// files under dir: first the chunks this agent holds, then what the source
// sends. Each batch is fsynced, then recorded in done (in the store), then
// reported; the last one of a fill that succeeds is not recorded (see
// finish): the release is recorded as staged next. trust is
// fill.trustStaged.
func (s *Stager) fillStaging(ctx context.Context, r Release, m *manifest.Manifest, dir string, done bitmap, sources map[string]string, lim *limiter, trust bool, p *Progress, progress func(Progress)) error {
	record := func(positions []int) error {
		for _, i := range positions {
			done.set(i)
		}
		return s.cfg.Store.Update(func(tx *store.Tx) error { return tx.PutProgress(r.Application, r.ID, done) })
	}
	var mu sync.Mutex // p: the committer reports while copyLocal runs
	onCommit := func(b batch) {
		mu.Lock()
		defer mu.Unlock()
		p.TransferredBytes += b.wire
		s.metrics.wireBytes.Add(float64(b.wire))
		s.metrics.fetchedBytes.Add(float64(b.fetched))
		s.metrics.chunksFetched.Add(float64(b.chunks))
		progress(*p)
	}
	cloned, linkedDirs, err := s.cloneUnchanged(ctx, r, m, dir, done, sources, lim)
	if err != nil {
		return fmt.Errorf("stage release %s of %q: %w", r.ID, r.Application, err)
	}
	mu.Lock()
	p.ClonedBytes += cloned
	mu.Unlock()
	f := newFill(targets(dir, m), done, s.cfg.CommitBytes, record, onCommit)
	f.limit = func(n int64) error { return lim.wait(ctx, n) }
	f.wrote = func(id manifest.ChunkID, l location) { s.live.wrote(r.ID, id, l) }
	f.trustStaged, f.filling = trust, r.ID
	if err := f.syncFirst(linkedDirs); err != nil {
		_ = f.finish(false)
		return fmt.Errorf("stage release %s of %q: %w", r.ID, r.Application, err)
	}
	_, before := f.missing()
	began := s.cfg.Clock()
	x, err := localIndex(s.cfg.Store, s.decoded, s.cfg.Root, f.needs)
	if err == nil {
		err = f.copyLocal(x)
		s.live.notify()
	}
	start := s.cfg.Clock()
	before += cloned
	_, lacking := f.missing()
	if err == nil {
		mu.Lock()
		p.ReusedBytes += m.Size() - lacking
		mu.Unlock()
		err = s.fetchInto(ctx, r, f)
	}
	if ferr := f.finish(err == nil); err == nil {
		err = ferr
	}
	end := s.cfg.Clock()
	s.metrics.fetchSeconds.Add(end.Sub(start).Seconds()) // up to the last commit
	if err != nil {
		return fmt.Errorf("stage release %s of %q: %w", r.ID, r.Application, err)
	}
	s.cfg.Log.Info("release files filled", logging.KeyApplication, r.Application, logging.KeyRelease, r.ID,
		"copied_bytes", before-lacking, "copy_took", start.Sub(began), "fetched_bytes", lacking, "fetch_took", end.Sub(start))
	return nil
}

// location is a place on this agent's disk that held a chunk when it was
// recorded: a file and the chunk's offset in it. Whoever reads it checks the
// hash: files can be damaged, replaced or removed since.
type location struct {
	path string
	off  int64
	size int64
	// staged is the id of the staged release that path is a file of
	// (verified chunk by chunk when it was staged), "" if none; fileSize
	// is then its size in that release's manifest. See fill.trustStaged.
	staged   string
	fileSize int64
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
func localIndex(st *store.Store, dec *manifests, root string, want func(manifest.ChunkID) bool) (index, error) {
	x := index{}
	err := st.View(func(tx *store.Tx) error {
		recs, err := tx.ReleaseRecords() // manifests decoded in place, not copied
		if err != nil {
			return err
		}
		for _, rec := range recs {
			r := Release{Application: rec.Application, ID: rec.ID}
			dir, done, staged := layout.ReleaseDir(root, r.Application, r.ID), bitmap(nil), r.ID
			if rec.State != store.ReleaseStaged {
				bits, ok := tx.Progress(r.Application, r.ID)
				if !ok {
					continue // nothing written yet
				}
				dir, done, staged = stagingDir(root, r), bits, ""
			}
			m, err := dec.decode(tx.ManifestBytes(r.Application, r.ID))
			if err != nil {
				continue // never staged; its chunks are nowhere
			}
			for i, p := range positions(m) {
				if (done == nil || done.has(i)) && (want == nil || want(p.id)) {
					f := &m.Files[p.file]
					x.add(p.id, location{path: filepath.Join(dir, filepath.FromSlash(f.Path)), off: p.off, size: p.size, staged: staged, fileSize: f.Size})
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
	x, err := localIndex(st, nil, "", nil)
	held := make(map[manifest.ChunkID]bool, len(x))
	for id := range x {
		held[id] = true
	}
	return held, err
}

// target is a file a fill writes.
type target struct {
	path string
	file *manifest.File
	// first is the release position of the file's first chunk (see
	// positions); -1: the fill records no positions for it.
	first int
}

// slot is one place a chunk is written to.
type slot struct {
	target int
	off    int64
	pos    int // the chunk position recorded once durable; -1: none
}

// batch is what one commit makes durable.
type batch struct {
	sync      []*os.File // files written since the last commit
	close     []*os.File // files complete: closed after their sync
	positions []int      // positions written
	bytes     int64      // chunk bytes written (each distinct chunk once)
	fetched   int64      // part of bytes that came over the wire
	chunks    int        // chunks fetched
	wire      int64      // bytes received over the wire
	// unrecorded says record is not called for it (finish's last).
	unrecorded bool
}

// fill is the state of one fill. write, copyLocal and the fetch run on one
// goroutine; the committer on another.
type fill struct {
	targets []target
	slots   map[manifest.ChunkID][]slot
	order   []manifest.ChunkID // the distinct chunks to write, in target order
	size    map[manifest.ChunkID]int64
	left    []int // slots left per target
	open    map[int]*os.File

	commitBytes int
	// limit, if set, is called with the bytes about to be written, and
	// waits as long as the rate cap says.
	limit func(n int64) error
	// wrote, if set, is told where each chunk was written (live.go).
	wrote func(id manifest.ChunkID, l location)
	// trustStaged lets copyLocal take a chunk from a staged release's
	// file without hashing it, if the file is still read-only and of its
	// size, and the release is not the one being filled (staged again:
	// found damaged): see copyLocal. A repair leaves it false: the file
	// it repairs may be its own source.
	trustStaged bool
	filling     string // the id of the release being filled
	cur         batch
	inCur       map[*os.File]bool
	batches     chan batch
	done        chan struct{}

	mu  sync.Mutex
	err error // the committer's first error
}

// newFill prepares writing the chunks of targets whose position done does
// not have (nil: none). record makes written positions known (after their
// data is durable), onCommit reports a durable batch; both run on the
// committer goroutine and may be nil.
func newFill(targets []target, done bitmap, commitBytes int, record func([]int) error, onCommit func(batch)) *fill {
	f := &fill{targets: targets, slots: map[manifest.ChunkID][]slot{}, size: map[manifest.ChunkID]int64{},
		left: make([]int, len(targets)), open: map[int]*os.File{}, commitBytes: commitBytes,
		inCur: map[*os.File]bool{}, batches: make(chan batch, 1), done: make(chan struct{})}
	for ti, t := range targets {
		var off int64
		for ci, c := range t.file.Chunks {
			pos := -1
			if t.first >= 0 {
				pos = t.first + ci
			}
			if pos < 0 || !done.has(pos) {
				if _, seen := f.slots[c.ID]; !seen {
					f.order = append(f.order, c.ID)
					f.size[c.ID] = c.Size
				}
				f.slots[c.ID] = append(f.slots[c.ID], slot{target: ti, off: off, pos: pos})
				f.left[ti]++
			}
			off += c.Size
		}
	}
	go f.commit(record, onCommit)
	return f
}

// needs reports whether chunk id is still to be written.
func (f *fill) needs(id manifest.ChunkID) bool { return len(f.slots[id]) > 0 }

// needed returns, in a new slice, the ids that are still to be written.
func (f *fill) needed(ids []manifest.ChunkID) []manifest.ChunkID {
	var out []manifest.ChunkID
	for _, id := range ids {
		if f.needs(id) {
			out = append(out, id)
		}
	}
	return out
}

// missing returns the chunks still to be written, in target order, and their
// total size.
func (f *fill) missing() ([]manifest.ChunkID, int64) {
	ids := f.needed(f.order)
	var n int64
	for _, id := range ids {
		n += f.size[id]
	}
	return ids, n
}

// failed returns the committer's error, if any.
func (f *fill) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// received counts n bytes received over the wire.
func (f *fill) received(n int64) { f.cur.wire += n }

// write writes chunk id's verified data to each of its slots; fetched says
// it came over the wire.
func (f *fill) write(id manifest.ChunkID, data []byte, fetched bool) error {
	if err := f.failed(); err != nil {
		return err
	}
	if f.limit != nil {
		if err := f.limit(int64(len(data) * len(f.slots[id]))); err != nil {
			return err
		}
	}
	for _, sl := range f.slots[id] {
		out, err := f.file(sl.target)
		if err != nil {
			return err
		}
		if _, err := out.WriteAt(data, sl.off); err != nil {
			return fmt.Errorf("write %s: %w", f.targets[sl.target].path, err)
		}
		if !f.inCur[out] {
			f.inCur[out] = true
			f.cur.sync = append(f.cur.sync, out)
		}
		if sl.pos >= 0 {
			f.cur.positions = append(f.cur.positions, sl.pos)
		}
		if f.left[sl.target]--; f.left[sl.target] == 0 {
			// Complete: its (read-only) mode is set now so that the sync below makes
			// it durable with the data; then it is closed.
			if err := out.Chmod(readOnly(f.targets[sl.target].file.Mode)); err != nil {
				return err
			}
			f.cur.close = append(f.cur.close, out)
			delete(f.open, sl.target)
		}
	}
	if f.wrote != nil {
		sl := f.slots[id][0]
		f.wrote(id, location{path: f.targets[sl.target].path, off: sl.off, size: int64(len(data))})
	}
	delete(f.slots, id)
	n := int64(len(data))
	f.cur.bytes += n
	if fetched {
		f.cur.fetched += n
		f.cur.chunks++
	}
	if f.cur.bytes >= int64(f.commitBytes) {
		f.flush()
	}
	return nil
}

// file returns target t opened for writing.
func (f *fill) file(t int) (*os.File, error) {
	if out, ok := f.open[t]; ok {
		return out, nil
	}
	out, err := openOwn(f.targets[t].path, os.O_WRONLY) // never a linked inode
	if err != nil {
		return nil, err
	}
	f.open[t] = out
	return out, nil
}

// syncFirst hands the committer the directories dirs to fsync (then
// close) before anything else it commits, and returns at once: the
// committer syncs them while the fill writes.
func (f *fill) syncFirst(dirs []string) error {
	for _, d := range dirs {
		out, err := os.Open(d)
		if err != nil {
			return err
		}
		f.cur.sync = append(f.cur.sync, out)
		f.cur.close = append(f.cur.close, out)
	}
	f.flush()
	return nil
}

// flush hands the current batch to the committer (waiting while it is busy
// with the one before).
func (f *fill) flush() {
	if f.cur.bytes == 0 && f.cur.wire == 0 && len(f.cur.close) == 0 {
		return
	}
	f.batches <- f.cur
	f.cur, f.inCur = batch{}, map[*os.File]bool{}
}

// commit runs on its own goroutine: for each batch, fsync its files, close
// the complete ones, record its positions, report it. After an error it
// only closes files.
func (f *fill) commit(record func([]int) error, onCommit func(batch)) {
	defer close(f.done)
	_ = lowerThread() // fsync at low priority; the writer's failure is logged (Stager.lowered)
	for b := range f.batches {
		err := f.failed()
		for _, out := range b.sync {
			if err == nil {
				if e := out.Sync(); e != nil {
					err = fmt.Errorf("fsync %s: %w", out.Name(), e)
				}
			}
		}
		for _, out := range b.close {
			if e := out.Close(); e != nil && err == nil {
				err = e
			}
		}
		if err == nil && record != nil && len(b.positions) > 0 && !b.unrecorded {
			err = record(b.positions)
		}
		if err == nil && onCommit != nil {
			onCommit(b)
		}
		if err != nil {
			f.mu.Lock()
			if f.err == nil {
				f.err = err
			}
			f.mu.Unlock()
		}
	}
}

// finish commits what is left, waits for the committer and closes every
// file. It returns the committer's error. With complete (every chunk is
// written), the positions of the batch it commits are fsynced and reported
// but not recorded: the caller records the release as staged next
// (markStaged), and a store commit (two fdatasyncs, each waiting on the
// file system's journal) that only a crash in between would read is
// saved. After such a crash, the stage resumes from the record before, or
// starts afresh (openStaging; skeletonIntact refuses to resume beside a
// link that no record covers).
func (f *fill) finish(complete bool) error {
	f.cur.unrecorded = complete
	f.flush()
	close(f.batches)
	<-f.done
	for t, out := range f.open {
		_ = out.Close()
		delete(f.open, t)
	}
	return f.failed()
}
