package stage

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/pkg/logging"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// repairPrefix names the temporary file beside a file being repaired.
const repairPrefix = ".repair-"

// Reverify checks staged releases against their manifests just before they
// are activated, and repairs what differs. A regular file that is missing or
// whose size, mode or content is wrong is written again beside it, from the
// chunks this agent holds intact (those of the damaged file that still
// verify among them) and, for the rest only, from the controller; then it
// is renamed over the damaged one. Any other difference (an entry the
// manifest does not list, a symlink or a directory changed, a directory
// that cannot be written) makes the release be built again, still fetching
// only what the agent does not hold. A release that runs now, or that is
// not staged (the activation refuses it), is not touched. It returns what
// it fetched. Errors: fetch and store errors, as Stage's.
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
	d, err := s.inspect(r)
	if err != nil || !d.Staged || d.Damage == nil {
		return err // not staged (the activation says so), running, or intact
	}
	m, dir := d.Manifest, s.releaseDir(r)
	log := s.cfg.Log.With(logging.KeyApplication, r.Application, logging.KeyRelease, r.ID)
	if err := s.repair(ctx, r, dir, damagedFiles(dir, m), p); err != nil {
		log.Warn("cannot repair the damaged files in place; building the release again", "error", err)
	} else if Verify(dir, m) == nil {
		return nil
	}
	log.Warn("staged release differs from its manifest; building it again")
	// Arm is on the clock: no cap. Nothing verifies the release after
	// this build, so every chunk it copies is hashed.
	if err := s.build(ctx, r, m, nil, false, p, func(Progress) {}); err != nil {
		return err
	}
	return s.markStaged(r)
}

// repair writes each damaged file of release r again into a temporary file
// beside it, fsynced, and renames it over the damaged one.
func (s *Stager) repair(ctx context.Context, r Release, dir string, damaged []manifest.File, p *Progress) error {
	if len(damaged) == 0 {
		return nil
	}
	tmps := make([]target, len(damaged))
	for i := range damaged {
		name := filepath.Join(dir, filepath.FromSlash(damaged[i].Path))
		if info, err := os.Lstat(filepath.Dir(name)); err != nil || !info.IsDir() {
			return fmt.Errorf("directory of %s: %w", damaged[i].Path, fs.ErrNotExist)
		}
		tmp := filepath.Join(filepath.Dir(name), repairPrefix+path.Base(damaged[i].Path))
		_ = os.Remove(tmp)
		if err := createTarget(tmp, &damaged[i], false); err != nil {
			return err
		}
		defer os.Remove(tmp) // gone once renamed
		tmps[i] = target{path: tmp, file: &damaged[i], first: -1}
	}
	onCommit := func(b batch) { p.TransferredBytes += b.wire }
	f := newFill(tmps, nil, s.cfg.CommitBytes, nil, onCommit)
	x, err := localIndex(s.cfg.Store, s.decoded, s.cfg.Root, f.needs)
	if err == nil {
		err = f.copyLocal(x)
	}
	if err == nil {
		err = s.fetchInto(ctx, r, f)
	}
	if ferr := f.finish(false); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	for i, t := range tmps {
		name := filepath.Join(dir, filepath.FromSlash(damaged[i].Path))
		if err := renameInto(t.path, name); err != nil {
			return err
		}
		if err := layout.SyncDir(filepath.Dir(name)); err != nil {
			return err
		}
		s.cfg.Log.Warn("staged file was damaged; written again", logging.KeyApplication, r.Application, logging.KeyRelease, r.ID, "file", damaged[i].Path)
	}
	return nil
}

// renameInto renames tmp over name, making name's read-only directory
// writable for the rename and read-only again after it.
func renameInto(tmp, name string) error {
	parent := filepath.Dir(name)
	info, err := os.Stat(parent)
	if err != nil {
		return err
	}
	if err := os.Chmod(parent, info.Mode().Perm()|0o700); err != nil {
		return err
	}
	err = os.Rename(tmp, name)
	if cerr := os.Chmod(parent, info.Mode().Perm()); err == nil {
		err = cerr
	}
	return err
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
		if err != nil || !info.Mode().IsRegular() || info.Size() != f.Size || info.Mode().Perm() != readOnly(f.Mode) || verifyContent(name, &f) != nil {
			out = append(out, f)
		}
	}
	return out
}
