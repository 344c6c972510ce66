package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// A v2 costs what changed: a file of the release being staged whose
// content (its chunk ids, in order) is that of a file of a release of the
// same application already staged here is cloned from it whole, before any
// chunk is copied or fetched: a reflink (FICLONE) where the file system
// shares blocks, else copy_file_range (the kernel copies, nothing passes
// through the agent), else a plain copy. Its bytes are not hashed again:
// they were verified when that release was staged, and staged releases are
// read-only (files 0444 or 0555, directories 0555) and only cloned from
// when they still are. Arm verifies the whole release before the swap,
// which catches a source damaged since (Reverify).

// readOnly is the mode a staged release gives an entry whose manifest mode
// is mode: the permission bits without any write bit (the exec bits kept).
func readOnly(mode fs.FileMode) fs.FileMode { return mode.Perm() &^ 0o222 }

// contentKey identifies a regular file's content by its chunk ids.
func contentKey(f *manifest.File) string {
	var b strings.Builder
	for _, c := range f.Chunks {
		b.Write(c.ID[:])
	}
	return b.String()
}

// cloneSources returns, by content, a file of a staged release of app
// other than except (its path), for each non-empty file content those
// releases hold.
func cloneSources(st *store.Store, root, app, except string) (map[string]string, error) {
	out := map[string]string{}
	err := st.View(func(tx *store.Tx) error {
		recs, err := tx.Releases()
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.Application != app || rec.ID == except || rec.State != store.ReleaseStaged {
				continue
			}
			m, err := manifest.Decode(rec.Manifest)
			if err != nil {
				continue
			}
			dir := layout.ReleaseDir(root, app, rec.ID)
			for i := range m.Files {
				if f := &m.Files[i]; f.IsRegular() && f.Size > 0 {
					if k := contentKey(f); out[k] == "" {
						out[k] = filepath.Join(dir, filepath.FromSlash(f.Path))
					}
				}
			}
		}
		return nil
	})
	return out, err
}

// cloneUnchanged clones into dir every file of m not written yet whose
// content a staged release of r's application holds, makes each durable
// (mode, fsync), then records their positions in done and in the store. A
// file that cannot be cloned (its source gone, changed in size, or no
// longer read-only) is left to the fill. It returns the bytes cloned.
func (s *Stager) cloneUnchanged(ctx context.Context, r Release, m *manifest.Manifest, dir string, done bitmap, lim *limiter) (int64, error) {
	sources, err := cloneSources(s.cfg.Store, s.cfg.Root, r.Application, r.ID)
	if err != nil || len(sources) == 0 {
		return 0, err
	}
	var cloned int64
	var positions []int
	for _, t := range targets(dir, m) {
		src, ok := sources[contentKey(t.file)]
		if !ok || t.file.Size == 0 || allDone(done, t.first, len(t.file.Chunks)) {
			continue
		}
		method, err := cloneFile(ctx, src, t.path, t.file, lim)
		if errors.Is(err, errNoSource) {
			continue
		}
		if err != nil {
			return cloned, fmt.Errorf("clone %s from %s: %w", t.path, src, err)
		}
		s.metrics.clonedBytes.WithLabelValues(method).Add(float64(t.file.Size))
		cloned += t.file.Size
		for i := range t.file.Chunks {
			positions = append(positions, t.first+i)
		}
	}
	if len(positions) == 0 {
		return 0, nil
	}
	for _, i := range positions {
		done.set(i)
	}
	err = s.cfg.Store.Update(func(tx *store.Tx) error { return tx.PutProgress(r.Application, r.ID, done) })
	return cloned, err
}

// allDone reports whether done has the n positions from first.
func allDone(done bitmap, first, n int) bool {
	for i := range n {
		if !done.has(first + i) {
			return false
		}
	}
	return true
}

// errNoSource says a clone source cannot serve (gone, another size, or
// writable): the file is filled chunk by chunk instead.
var errNoSource = errors.New("clone source cannot serve")

// cloneFile makes dst (created by createSkeleton) a copy of src, which must
// be a read-only file of f's size, sets dst's read-only mode and fsyncs it.
// It returns how it copied: "reflink", "copy_file_range" or "copy".
func cloneFile(ctx context.Context, src, dst string, f *manifest.File, lim *limiter) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", errNoSource
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil || !info.Mode().IsRegular() || info.Size() != f.Size || info.Mode().Perm()&0o222 != 0 {
		return "", errNoSource
	}
	_ = os.Chmod(dst, 0o600) // a crash may have left it read-only
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return "", err
	}
	defer out.Close()
	method, err := copyContent(ctx, out, in, f.Size, lim)
	if err != nil {
		return "", err
	}
	if err := out.Chmod(readOnly(f.Mode)); err != nil {
		return "", err
	}
	if err := out.Sync(); err != nil {
		return "", fmt.Errorf("fsync %s: %w", dst, err)
	}
	return method, out.Close()
}

// copyPiece is how much one copy_file_range or plain copy step moves
// between two waits of the rate cap.
const copyPiece = 4 << 20

// copyContent copies size bytes of in into the empty out: a reflink if the
// file system can, else copy_file_range, else read and write. The bytes
// copied (not reflinked) go through lim.
func copyContent(ctx context.Context, out, in *os.File, size int64, lim *limiter) (string, error) {
	if reflink(out, in) == nil {
		return "reflink", nil
	}
	var off int64
	for off < size {
		n := min(size-off, copyPiece)
		if err := lim.wait(ctx, n); err != nil {
			return "", err
		}
		w, err := copyRange(out, in, off, n)
		if err != nil && off == 0 {
			break // not supported here: plain copy
		}
		if err != nil {
			return "", err
		}
		if w == 0 {
			return "", fmt.Errorf("%s ended at %d bytes, %d expected: %w", in.Name(), off, size, io.ErrUnexpectedEOF)
		}
		off += w
	}
	if off == size {
		return "copy_file_range", nil
	}
	buf := make([]byte, min(size, copyPiece))
	for off = 0; off < size; {
		n := min(size-off, int64(len(buf)))
		if err := lim.wait(ctx, n); err != nil {
			return "", err
		}
		if _, err := in.ReadAt(buf[:n], off); err != nil {
			return "", err
		}
		if _, err := out.WriteAt(buf[:n], off); err != nil {
			return "", err
		}
		off += n
	}
	return "copy", nil
}
