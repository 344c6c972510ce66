package stage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// Prefixes of the temporary directories beside the releases.
const (
	stagingPrefix = ".staging-"
	trashPrefix   = ".trash-"
)

func (s *Stager) releaseDir(r Release) string {
	return layout.ReleaseDir(s.cfg.Root, r.Application, r.ID)
}

// build puts release r in place under ROOT/<app>/releases/<id>: it fills
// the staging directory beside it (creating it, or resuming what an
// interrupted build left there), from the chunks this agent already holds
// and then from the source, sets modes and symlinks, checks the tree, and
// renames it into place. A directory already in place that matches m is
// kept; one that does not is replaced (it still serves as a source of
// chunks), unless it runs. lim caps how fast it writes (nil: no cap).
// trust lets it copy chunks from other staged releases' read-only files
// without hashing them (fill.trustStaged); whoever builds without a
// verify of the whole release to follow passes false.
func (s *Stager) build(ctx context.Context, r Release, m *manifest.Manifest, lim *limiter, trust bool, p *Progress, progress func(Progress)) error {
	releases := layout.ReleasesDir(s.cfg.Root, r.Application)
	final := s.releaseDir(r)
	if err := layout.MkdirAllSynced(releases, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", releases, err)
	}
	_, err := os.Lstat(final)
	inPlace := err == nil
	if inPlace {
		err := Verify(final, m)
		if err == nil {
			p.ReusedBytes += m.Size()
			return nil
		}
		if cur, _ := layout.Current(s.cfg.Root, r.Application); cur == r.ID {
			return fmt.Errorf("release %s of %q runs, and %s differs from its manifest (%v); it was left as it is: %w", r.ID, r.Application, final, err, errkind.FailedPrecondition)
		}
	}
	dir := stagingDir(s.cfg.Root, r)
	sources, err := cloneSources(s.cfg.Store, s.decoded, s.cfg.Root, r.Application, r.ID)
	if err != nil {
		return fmt.Errorf("stage release %s of %q: %w", r.ID, r.Application, err)
	}
	done, err := s.openStaging(r, m, dir, func(f *manifest.File) bool { return sources[contentKey(f)] != "" })
	if err != nil {
		return fmt.Errorf("stage release %s of %q in %s: %w", r.ID, r.Application, dir, err)
	}
	if err := s.fillStaging(ctx, r, m, dir, done, sources, lim, trust, p, progress); err != nil {
		return err
	}
	if err := finalize(dir, m); err != nil {
		return fmt.Errorf("release %s of %q in %s: %w (nothing was put in place)", r.ID, r.Application, dir, err)
	}
	if inPlace {
		if err := removeAside(releases, final); err != nil {
			return err
		}
	}
	if err := os.Rename(dir, final); err != nil {
		return fmt.Errorf("put release %s of %q in place: %w", r.ID, r.Application, err)
	}
	return layout.SyncDir(releases)
}

// openStaging returns what is already written in r's staging directory
// dir, per its record in the store, if dir still has every file of m at its
// size; otherwise it creates dir afresh (files sized, those for which
// cloned says a clone is expected without allocating their space) and
// forgets any record of written positions.
func (s *Stager) openStaging(r Release, m *manifest.Manifest, dir string, cloned func(*manifest.File) bool) (bitmap, error) {
	n := len(positions(m))
	var bits bitmap
	var ok bool
	if err := s.cfg.Store.View(func(tx *store.Tx) error {
		bits, ok = tx.Progress(r.Application, r.ID)
		return nil
	}); err != nil {
		return nil, err
	}
	if ok && len(bits) == len(newBitmap(n)) && skeletonIntact(dir, m, bits) {
		return bits, nil
	}
	if _, err := os.Lstat(dir); err == nil {
		if err := removeTree(dir); err != nil {
			return nil, err
		}
	}
	if err := createSkeleton(dir, m, cloned); err != nil {
		_ = removeTree(dir)
		return nil, err
	}
	bits = newBitmap(n)
	if !ok {
		// Nothing to forget: the fill's first commit records the first
		// positions (without a record, a restart starts afresh, which
		// costs nothing here), and a store commit, two fdatasyncs, is
		// saved.
		return bits, nil
	}
	err := s.cfg.Store.Update(func(tx *store.Tx) error { return tx.DeleteProgress(r.Application, r.ID) })
	return bits, err
}

// skeletonIntact reports whether every regular file of m is in dir with its
// size, and none that the fill may still write (a position not in done) is
// a hard link to a staged release's file (a crash between a link and its
// record): resuming would write into that release.
func skeletonIntact(dir string, m *manifest.Manifest, done bitmap) bool {
	for _, t := range targets(dir, m) {
		info, err := os.Lstat(t.path)
		if err != nil || !info.Mode().IsRegular() || info.Size() != t.file.Size {
			return false
		}
		if links(info) > 1 && !allDone(done, t.first, len(t.file.Chunks)) {
			return false
		}
	}
	return true
}

// dirModes returns the directories of m (explicit and implicit, "." first),
// parents before children, and their modes.
func dirModes(m *manifest.Manifest) ([]string, map[string]fs.FileMode) {
	dirs := map[string]fs.FileMode{".": 0o755}
	for _, f := range m.Files {
		for p := path.Dir(f.Path); p != "."; p = path.Dir(p) {
			if _, ok := dirs[p]; !ok {
				dirs[p] = 0o755 // implicit parent; a manifest entry overrides it
			}
		}
		if f.Mode.IsDir() {
			dirs[f.Path] = f.Mode.Perm()
		}
	}
	order := make([]string, 0, len(dirs))
	for p := range dirs {
		order = append(order, p)
	}
	sort.Strings(order) // "." first, parents before children
	return order, dirs
}

// createSkeleton creates dir with m's directories (writable until finalize)
// and regular files: empty ones complete (mode set, fsynced), the others
// sized to be filled, their disk space allocated, except those for which
// cloned (nil: none) says a clone from a staged release is expected: a
// link or reflink allocates nothing, and allocating space only to free it
// again cost a v2 in proportion to the whole release (see clone.go).
//
// The directories are not fsynced here: finalize fsyncs every one of them
// before the release is put in place, and each fsync of a directory waits
// for the file system's journal, behind every other writer on the host.
// Until then nothing depends on their entries being durable: a crash can
// lose entries, and a stage that resumes checks that every file is there
// at its size (skeletonIntact), or starts afresh; a file's written
// positions are recorded only after the file itself is fsynced.
func createSkeleton(dir string, m *manifest.Manifest, cloned func(*manifest.File) bool) error {
	order, _ := dirModes(m)
	for _, p := range order {
		if err := os.Mkdir(filepath.Join(dir, filepath.FromSlash(p)), 0o700); err != nil {
			return err
		}
	}
	for i := range m.Files {
		if f := &m.Files[i]; f.IsRegular() {
			if err := createTarget(filepath.Join(dir, filepath.FromSlash(f.Path)), f, cloned != nil && cloned(f)); err != nil {
				return err
			}
		}
	}
	return nil
}

// createTarget creates the file name for f: an empty f is created complete
// (its mode set and fsynced), any other is sized to f.Size, to be filled:
// its space allocated (reserve), or left sparse if sparse.
func createTarget(name string, f *manifest.File, sparse bool) error {
	out, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if f.Size > 0 && sparse {
		err = out.Truncate(f.Size)
	} else if f.Size > 0 {
		err = reserve(out, f.Size)
	} else if err = out.Chmod(readOnly(f.Mode)); err == nil {
		err = out.Sync()
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return out.Close()
}

// finalize completes a filled staging directory: symlinks, then the
// directories' (read-only) modes, each directory fsynced, then a check of the whole
// tree against m (the files' contents were verified chunk by chunk as they
// were written). It can run again after an interruption.
func finalize(dir string, m *manifest.Manifest) error {
	order, modes := dirModes(m)
	for _, p := range order { // writable again if an earlier finalize was interrupted
		if err := os.Chmod(filepath.Join(dir, filepath.FromSlash(p)), 0o700); err != nil {
			return err
		}
	}
	for i := range m.Files {
		f := &m.Files[i]
		name := filepath.Join(dir, filepath.FromSlash(f.Path))
		if f.Mode.Type() != fs.ModeSymlink {
			continue
		}
		if link, err := os.Readlink(name); err == nil && link == f.Link {
			continue
		}
		_ = os.Remove(name)
		if err := os.Symlink(f.Link, name); err != nil {
			return err
		}
	}
	for i := len(order) - 1; i >= 0; i-- { // children first
		p := filepath.Join(dir, filepath.FromSlash(order[i]))
		if err := os.Chmod(p, readOnly(modes[order[i]])); err != nil {
			return err
		}
		if err := layout.SyncDir(p); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
	}
	if err := verifyTree(dir, m, false); err != nil {
		return fmt.Errorf("does not match its manifest: %w", err)
	}
	return nil
}

// removeAside renames dir to a trash name beside it, then removes it, so that
// no half-removed directory ever sits under its real name.
func removeAside(parent, dir string) error {
	trash, err := os.MkdirTemp(parent, trashPrefix)
	if err != nil {
		return err
	}
	dst := filepath.Join(trash, filepath.Base(dir))
	_ = os.Chmod(dir, 0o700) // a read-only directory cannot move to another parent
	if err := os.Rename(dir, dst); err != nil {
		_ = os.Remove(trash)
		return fmt.Errorf("move %s aside: %w", dir, err)
	}
	if err := layout.SyncDir(parent); err != nil {
		return err
	}
	return removeTree(trash)
}

// removeTree removes dir and everything in it, even directories whose
// release mode has no write permission (0o555): those are made writable first.
func removeTree(dir string) error {
	if os.RemoveAll(dir) == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// Clean removes the temporary directories that an interrupted drop left
// beside the releases, and the staging directories of releases that are
// not being staged any more (an interrupted staging's directory is kept:
// staging it again resumes there). Call it before any staging starts.
func (s *Stager) Clean() error {
	apps, err := layout.Apps(s.cfg.Root)
	if err != nil {
		return err
	}
	resumable := map[string]bool{}
	if err := s.cfg.Store.View(func(tx *store.Tx) error {
		recs, err := tx.ReleaseRecords()
		for _, r := range recs {
			if _, ok := tx.Progress(r.Application, r.ID); ok && r.State == store.ReleaseStaging {
				resumable[stagingDir(s.cfg.Root, Release{Application: r.Application, ID: r.ID})] = true
			}
		}
		return err
	}); err != nil {
		return err
	}
	for _, app := range apps {
		dir := layout.ReleasesDir(s.cfg.Root, app)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // no releases dir
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if (strings.HasPrefix(e.Name(), stagingPrefix) && !resumable[p]) || strings.HasPrefix(e.Name(), trashPrefix) {
				if err := removeTree(p); err != nil {
					return fmt.Errorf("remove leftover %s: %w", filepath.Join(dir, e.Name()), err)
				}
				s.cfg.Log.Info("removed a leftover of an interrupted staging", logging.KeyApplication, app, "dir", e.Name())
			}
		}
	}
	return nil
}
