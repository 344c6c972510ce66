package stage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/agent/store"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// repairPrefix names the temporary file beside a file being repaired.
const repairPrefix = ".repair-"

// Reverify checks staged releases against their manifests just before they
// are activated, and repairs what differs. A regular file that is missing or
// whose size, mode or content is wrong is written again from the store,
// after fetching only the chunks of that file that the store lacks. Any
// other difference (an entry the manifest does not list, a symlink or a
// directory changed, a directory that cannot be written) makes the release
// be materialized again, still fetching only the chunks the store lacks. A
// release that runs now, or that is not staged (the activation refuses it),
// is not touched. It returns what it fetched. Errors: fetch and store errors,
// as Stage's.
func (s *Stager) Reverify(ctx context.Context, releases []Release) (Progress, error) {
	var p Progress
	for _, r := range releases {
		if err := layout.ValidRelease(r.Application, r.ID); err != nil {
			return p, fmt.Errorf("re-verify refused: %w", err)
		}
	}
	for _, r := range releases {
		if err := s.reverifyOne(ctx, r, &p); err != nil {
			return p, err
		}
	}
	return p, nil
}

func (s *Stager) reverifyOne(ctx context.Context, r Release, p *Progress) error {
	defer s.lock(r)()
	var rec *store.Release
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		rec, err = tx.Release(r.Application, r.ID)
		return err
	})
	if errors.Is(err, errkind.NotFound) || (err == nil && rec.State != store.ReleaseStaged) {
		return nil // not staged: the activation says so
	}
	if err != nil {
		return err
	}
	if cur, _ := layout.Current(s.cfg.Root, r.Application); cur == r.ID {
		return nil // it runs: never rewritten under the app's feet
	}
	m, err := manifest.Decode(rec.Manifest)
	if err != nil {
		return err
	}
	dir := s.releaseDir(r)
	if Verify(dir, m) == nil {
		return nil
	}
	log := s.cfg.Log.With(logging.KeyApplication, r.Application, logging.KeyRelease, r.ID)
	damaged := damagedFiles(dir, m)
	sub := &manifest.Manifest{Application: m.Application, Spec: m.Spec, Files: damaged}
	if err := s.fetch(ctx, r, sub, p, func(Progress) {}, nil); err != nil {
		return err
	}
	for i := range damaged {
		if err := s.rewrite(dir, &damaged[i]); err != nil {
			log.Warn("cannot repair a damaged file in place; materializing the release again", "file", damaged[i].Path, "error", err)
			break
		}
		log.Warn("staged file was damaged; written again from the store", "file", damaged[i].Path)
	}
	if Verify(dir, m) == nil {
		return nil
	}
	if err := s.fetch(ctx, r, m, p, func(Progress) {}, nil); err != nil {
		return err
	}
	log.Warn("staged release differs from its manifest; materializing it again")
	return s.materialize(r, m, nil)
}

// damagedFiles returns the regular files of m that are missing from dir or
// differ in size, mode or content.
func damagedFiles(dir string, m *manifest.Manifest) []manifest.File {
	var out []manifest.File
	for _, f := range m.Files {
		if !f.IsRegular() {
			continue
		}
		name := filepath.Join(dir, filepath.FromSlash(f.Path))
		info, err := os.Lstat(name)
		if err != nil || !info.Mode().IsRegular() || info.Size() != f.Size || info.Mode().Perm() != f.Mode.Perm() || verifyContent(name, &f) != nil {
			out = append(out, f)
		}
	}
	return out
}

// rewrite writes f again from the store into a temporary file beside it,
// fsynced, then renames it over the damaged one and fsyncs the directory.
func (s *Stager) rewrite(dir string, f *manifest.File) error {
	name := filepath.Join(dir, filepath.FromSlash(f.Path))
	parent := filepath.Dir(name)
	if info, err := os.Lstat(parent); err != nil || !info.IsDir() {
		return fmt.Errorf("directory of %s: %w", f.Path, fs.ErrNotExist)
	}
	tmp := filepath.Join(parent, repairPrefix+path.Base(f.Path))
	_ = os.Remove(tmp)
	if err := s.writeFile(tmp, f, nil); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return layout.SyncDir(parent)
}
