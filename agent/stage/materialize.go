package stage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

// materialize writes m into a temp dir beside ROOT/<app>/releases/<id>,
// verifies it and renames it into place. A directory already in place that
// does not match the manifest is moved aside and removed first.
// With arr, it writes each chunk once the fetch running beside it has
// committed it; chunks that fetch verified a moment ago are written as they
// are, every other chunk is hashed again on its way to disk.
func (s *Stager) materialize(r Release, m *manifest.Manifest, arr *arrivals) error {
	releases := layout.ReleasesDir(s.cfg.Root, r.Application)
	final := s.releaseDir(r)
	if err := layout.MkdirAllSynced(releases, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", releases, err)
	}
	if _, err := os.Lstat(final); err == nil {
		err := Verify(final, m)
		if err == nil {
			return nil
		}
		if cur, _ := layout.Current(s.cfg.Root, r.Application); cur == r.ID {
			return fmt.Errorf("release %s of %q runs, and %s differs from its manifest (%v); it was left as it is: %w", r.ID, r.Application, final, err, errkind.FailedPrecondition)
		}
		if err := removeAside(releases, final); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(releases, stagingPrefix+r.ID+"-")
	if err != nil {
		return fmt.Errorf("materialize release %s of %q: %w", r.ID, r.Application, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = removeTree(tmp)
		}
	}()
	if err := s.write(tmp, m, arr); err != nil {
		return fmt.Errorf("materialize release %s of %q in %s: %w (nothing was put in place)", r.ID, r.Application, tmp, err)
	}
	// Contents were hashed as they were written (writeFile): check the rest.
	if err := verifyTree(tmp, m, false); err != nil {
		return fmt.Errorf("materialized release %s of %q does not match its manifest: %w (nothing was put in place)", r.ID, r.Application, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("put release %s of %q in place: %w", r.ID, r.Application, err)
	}
	ok = true
	return layout.SyncDir(releases)
}

// removeAside renames dir to a trash name beside it, then removes it, so that
// no half-removed directory ever sits under its real name.
func removeAside(parent, dir string) error {
	trash, err := os.MkdirTemp(parent, trashPrefix)
	if err != nil {
		return err
	}
	dst := filepath.Join(trash, filepath.Base(dir))
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

// write creates m's entries under dir: files with their content from the
// store, each fsynced; symlinks; directories, fsynced once their entries are
// written; then sets the directories' modes.
func (s *Stager) write(dir string, m *manifest.Manifest, arr *arrivals) error {
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
	sort.Strings(order) // parents first
	for _, p := range order[1:] {
		if err := os.Mkdir(filepath.Join(dir, filepath.FromSlash(p)), 0o700); err != nil {
			return err
		}
	}
	for i := range m.Files {
		f := &m.Files[i]
		name := filepath.Join(dir, filepath.FromSlash(f.Path))
		switch f.Mode.Type() {
		case 0:
			if err := s.writeFile(name, f, arr); err != nil {
				return err
			}
		case fs.ModeSymlink:
			if err := os.Symlink(f.Link, name); err != nil {
				return err
			}
		}
	}
	for i := len(order) - 1; i >= 0; i-- { // children first
		p := filepath.Join(dir, filepath.FromSlash(order[i]))
		if err := os.Chmod(p, dirs[order[i]]); err != nil {
			return err
		}
		if err := layout.SyncDir(p); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
	}
	return nil
}

func (s *Stager) writeFile(name string, f *manifest.File, arr *arrivals) error {
	out, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	for _, c := range f.Chunks {
		fresh, err := arr.wait(c.ID)
		if err != nil {
			return err
		}
		err = s.cfg.Store.View(func(tx *store.Tx) error {
			var w io.Writer = checked{w: out, id: c.ID}
			if fresh {
				w = out
			}
			_, err := tx.WriteChunk(c.ID, w)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	if err := out.Chmod(f.Mode.Perm()); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", name, err)
	}
	return out.Close()
}

// checked writes one whole chunk to w only if it hashes to id: what the
// store hands out is checked on its way to disk.
type checked struct {
	w  io.Writer
	id manifest.ChunkID
}

func (c checked) Write(p []byte) (int, error) {
	if manifest.HashChunk(p) != c.id {
		return 0, fmt.Errorf("chunk %s in the agent's store does not match its id; drop the release and stage it again: %w", c.id, errkind.DataLoss)
	}
	return c.w.Write(p)
}

// Verify checks that dir holds exactly m: the same entries with the same
// types and permissions, symlinks with the same targets, and regular files
// whose content hashes chunk by chunk to the manifest's chunk ids.
// Errors are errkind.DataLoss.
func Verify(dir string, m *manifest.Manifest) error { return verifyTree(dir, m, true) }

// verifyTree is Verify, with the files' contents checked only if content.
func verifyTree(dir string, m *manifest.Manifest, content bool) error {
	want := make(map[string]*manifest.File, len(m.Files))
	implicit := map[string]bool{}
	for i := range m.Files {
		want[m.Files[i].Path] = &m.Files[i]
		for p := path.Dir(m.Files[i].Path); p != "."; p = path.Dir(p) {
			implicit[p] = true
		}
	}
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		f, ok := want[rel]
		if !ok {
			if d.IsDir() && implicit[rel] {
				return nil
			}
			return fmt.Errorf("%q is not in the manifest", rel)
		}
		seen++
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Type() != f.Mode.Type() {
			return fmt.Errorf("%q is a %v, the manifest says %v", rel, info.Mode().Type(), f.Mode.Type())
		}
		switch f.Mode.Type() {
		case fs.ModeSymlink:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if link != f.Link {
				return fmt.Errorf("symlink %q points to %q, the manifest says %q", rel, link, f.Link)
			}
			return nil
		case 0:
			if info.Size() != f.Size {
				return fmt.Errorf("%q has %d bytes, the manifest says %d", rel, info.Size(), f.Size)
			}
			if content {
				if err := verifyContent(p, f); err != nil {
					return fmt.Errorf("%q: %w", rel, err)
				}
			}
		}
		if info.Mode().Perm() != f.Mode.Perm() {
			return fmt.Errorf("%q has mode %v, the manifest says %v", rel, info.Mode().Perm(), f.Mode.Perm())
		}
		return nil
	})
	if err == nil && seen != len(want) {
		var lacking []string
		for p := range want {
			if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				lacking = append(lacking, p)
			}
		}
		sort.Strings(lacking)
		err = fmt.Errorf("missing %s", strings.Join(lacking, ", "))
	}
	if err != nil {
		return fmt.Errorf("%s: %v: %w", dir, err, errkind.DataLoss)
	}
	return nil
}

func verifyContent(name string, f *manifest.File) error {
	in, err := os.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	var buf bytes.Buffer
	var off int64
	for i, c := range f.Chunks {
		buf.Reset()
		if _, err := io.CopyN(&buf, in, c.Size); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		if manifest.HashChunk(buf.Bytes()) != c.ID {
			return fmt.Errorf("chunk %d (bytes %d-%d) does not match its id %s", i, off, off+c.Size, c.ID)
		}
		off += c.Size
	}
	return nil
}

// Clean removes the temporary directories that an interrupted staging or
// drop left beside the releases. Call it before any staging starts.
func (s *Stager) Clean() error {
	apps, err := layout.Apps(s.cfg.Root)
	if err != nil {
		return err
	}
	for _, app := range apps {
		dir := layout.ReleasesDir(s.cfg.Root, app)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // no releases dir
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), stagingPrefix) || strings.HasPrefix(e.Name(), trashPrefix) {
				if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
					return fmt.Errorf("remove leftover %s: %w", filepath.Join(dir, e.Name()), err)
				}
				s.cfg.Log.Info("removed a leftover of an interrupted staging", logging.KeyApplication, app, "dir", e.Name())
			}
		}
	}
	return nil
}
