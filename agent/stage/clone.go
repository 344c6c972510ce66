package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// A v2 costs what changed: a file of the release being staged whose
// content (its chunk ids, in order) is that of a file of a release of the
// same application already staged here is cloned from it whole, before any
// chunk is copied or fetched, by the first of these that works:
//   - a reflink (FICLONE), where the file system shares blocks (XFS,
//     Btrfs): a new inode, no data written;
//   - a hard link, where the source inode already has the mode the new
//     release wants (modes belong to inodes): both releases then name the
//     same inode, nothing is written but a directory entry;
//   - copy_file_range (the kernel copies, nothing passes through the
//     agent), else a plain copy.
//
// Its bytes are not hashed again: they were verified when that release was
// staged, and staged releases are read-only (files 0444 or 0555,
// directories 0555) and only cloned from when they still are. Arm verifies
// the whole release before the swap, which catches a source damaged since
// (Reverify).
//
// A linked inode is never written in place: nothing in this package opens
// a release's file for writing once it is complete. The fill and the
// clone write only into files of the staging directory whose positions
// are not done yet, and refuse one with more than one link (see openOwn;
// openStaging starts afresh rather than resume next to one); a repair
// writes a new file and renames it over the damaged name (Reverify), which
// leaves the other release's name on the old inode; a drop unlinks.

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
func cloneSources(st *store.Store, dec *manifests, root, app, except string) (map[string]string, error) {
	out := map[string]string{}
	err := st.View(func(tx *store.Tx) error {
		recs, err := tx.ReleaseRecords() // manifests decoded in place, not copied
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.Application != app || rec.ID == except || rec.State != store.ReleaseStaged {
				continue
			}
			m, err := dec.decode(tx.ManifestBytes(app, rec.ID))
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
// content a staged release of r's application holds (sources, from
// cloneSources), makes each durable
// (mode, fsync), then sets their positions in done, for the fill's next
// commit to record, and returns the directories given links, for the fill
// to fsync before that commit. A
// file that cannot be cloned (its source gone, changed in size, or no
// longer read-only) is left to the fill. It returns the bytes cloned too.
func (s *Stager) cloneUnchanged(ctx context.Context, r Release, m *manifest.Manifest, dir string, done bitmap, sources map[string]string, lim *limiter) (int64, []string, error) {
	if len(sources) == 0 {
		return 0, nil, nil
	}
	var cloned int64
	var positions []int
	linkedDirs := map[string]bool{} // directories given a new entry
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
			return cloned, nil, fmt.Errorf("clone %s from %s: %w", t.path, src, err)
		}
		if method == methodLink {
			linkedDirs[filepath.Dir(t.path)] = true
		}
		s.metrics.clonedBytes.WithLabelValues(method).Add(float64(t.file.Size))
		cloned += t.file.Size
		for i := range t.file.Chunks {
			positions = append(positions, t.first+i)
		}
	}
	if len(positions) == 0 {
		return 0, nil, nil
	}
	for _, i := range positions {
		done.set(i)
	}
	// Neither synced nor recorded here: the fill fsyncs the directories of
	// the links first, on its committer while the copy goes on, and its
	// next commit records done whole, these positions with it (a store
	// commit, two fdatasyncs, saved per stage). A restart before clones
	// these files again; one linked and not recorded makes openStaging
	// start afresh (skeletonIntact).
	return cloned, slices.Sorted(maps.Keys(linkedDirs)), nil
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

// Clone methods, as counted in cutover_agent_cloned_bytes_total{method}.
const (
	methodReflink = "reflink"
	methodLink    = "link"
	methodRange   = "copy_file_range"
	methodCopy    = "copy"
)

// linkPrefix names the temporary link made beside a file it then replaces.
const linkPrefix = ".link-"

// cloneFile makes dst (created by createSkeleton) hold the content of src,
// which must be a read-only file of f's size: a reflink, else a hard link
// to src if src has f's read-only mode (then dst is src's inode), else a
// copy. A reflinked or copied dst is given its read-only mode and fsynced;
// a linked one is durable once its directory is fsynced (the caller's
// job). It returns the method (methodReflink, methodLink, methodRange or
// methodCopy); errNoSource if src cannot serve.
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
	out, err := openOwn(dst, os.O_WRONLY|os.O_TRUNC)
	if err != nil {
		return "", err
	}
	defer out.Close()
	method := methodReflink
	if reflink(out, in) != nil {
		if linkClones && info.Mode().Perm() == readOnly(f.Mode) && hardLink(src, dst) == nil {
			return methodLink, nil
		}
		if method, err = copyContent(ctx, out, in, f.Size, lim); err != nil {
			return "", err
		}
	}
	if err := out.Chmod(readOnly(f.Mode)); err != nil {
		return "", err
	}
	if err := out.Sync(); err != nil {
		return "", fmt.Errorf("fsync %s: %w", dst, err)
	}
	return method, out.Close()
}

// openOwn opens name, a file of a staging directory, with flag (O_WRONLY
// and more), writable again if a crash left it read-only. It refuses a
// file with more than one link: that inode is also a file of a staged
// release, which must never be written (a crash between a link and its
// record can leave one; openStaging does not resume next to it).
func openOwn(name string, flag int) (*os.File, error) {
	info, err := os.Lstat(name)
	if err != nil {
		return nil, err
	}
	if links(info) > 1 {
		return nil, fmt.Errorf("%s is shared with another release (%d links): not written", name, links(info))
	}
	_ = os.Chmod(name, 0o600) // a crash may have left it read-only
	return os.OpenFile(name, flag, 0)
}

// hardLink replaces dst by a hard link to src: linked beside dst, then
// renamed over it, so that dst never goes missing. It fails where links
// cannot be made (another file system, too many links); dst is then left
// as it was.
func hardLink(src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), linkPrefix+filepath.Base(dst))
	_ = os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// copyPiece is how much one copy_file_range or plain copy step moves
// between two waits of the rate cap.
const copyPiece = 4 << 20

// copyContent copies size bytes of in into the empty out: copy_file_range,
// else read and write (methodRange or methodCopy). The bytes go through lim.
func copyContent(ctx context.Context, out, in *os.File, size int64, lim *limiter) (string, error) {
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
		return methodRange, nil
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
	return methodCopy, nil
}
