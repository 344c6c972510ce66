package deployment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/cutover-dev/cutover/controlplane/build"
	"github.com/cutover-dev/cutover/controlplane/model"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// The package step (cutover.yaml `package:`): once a deployment is
// DEPLOYED, if a file matching `when_changed` differs between the release
// that ran before and the new one, the controller runs the command in a
// scratch copy of the new release (build.Builder.Package) and keeps the
// file it produced in Config.PackageDir/<deployment>/, to download with
// GetDeploymentPackage. The deployment stays DEPLOYED whatever happens;
// Deployment.Package says how the step went. A controller that stopped
// while it ran runs it again at start.

// Packager runs the package step; *build.Builder is the real one.
type Packager interface {
	Package(ctx context.Context, m *manifest.Manifest, chunk func(manifest.ChunkID) ([]byte, error), pkg *appspec.Package, dest string) (*build.PackageResult, error)
}

// maxChanged bounds the changed paths recorded.
const maxChanged = 20

// changedPaths returns the paths matching p's when_changed globs that
// differ between prev and next: added, removed, or with other content,
// mode or link. A nil prev (nothing ran before) makes every path of next
// added. It is pure.
func changedPaths(prev, next *manifest.Manifest, p *appspec.Package) []string {
	old := map[string]*manifest.File{}
	if prev != nil {
		for i := range prev.Files {
			old[prev.Files[i].Path] = &prev.Files[i]
		}
	}
	var out []string
	seen := map[string]bool{}
	for i := range next.Files {
		f := &next.Files[i]
		seen[f.Path] = true
		if o, ok := old[f.Path]; f.Mode.IsDir() || (ok && sameFile(o, f)) {
			continue // a directory differs only through its files
		}
		if p.MatchesChanged(f.Path) {
			out = append(out, f.Path)
		}
	}
	for name, f := range old {
		if !seen[name] && !f.Mode.IsDir() && p.MatchesChanged(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func sameFile(a, b *manifest.File) bool {
	return a.Mode == b.Mode && a.Size == b.Size && a.Link == b.Link && slices.Equal(a.Chunks, b.Chunks)
}

// planPackage decides, inside the commit that makes d DEPLOYED, whether
// the package step runs: it sets d.Package for the first application whose
// spec has one (Pending when a matching file changed).
func planPackage(tx model.Tx, d *model.Deployment) error {
	for _, app := range d.Applications {
		next, err := releaseManifest(tx, app.ReleaseID)
		if err != nil {
			return err
		}
		if next.Spec.Package == nil {
			continue
		}
		var prev *manifest.Manifest
		if app.PreviousReleaseID != "" {
			if prev, err = releaseManifest(tx, app.PreviousReleaseID); errors.Is(err, errkind.NotFound) {
				prev = nil // deleted since: every file counts as changed
			} else if err != nil {
				return err
			}
		}
		changed := changedPaths(prev, next, next.Spec.Package)
		d.Package = &model.PackageResult{Application: app.Name, Changed: changed[:min(len(changed), maxChanged)],
			Pending: len(changed) > 0, File: path.Base(next.Spec.Package.Output)}
		return nil
	}
	return nil
}

func releaseManifest(tx model.Tx, id string) (*manifest.Manifest, error) {
	b, err := tx.Manifest(id)
	if err != nil {
		return nil, err
	}
	return manifest.Decode(b)
}

// spawnPackage runs the pending package step of deployment id, if Run is
// running (otherwise Run's resume starts it). Call with s.mu held.
func (s *Service) spawnPackage(id string) {
	if s.runCtx == nil {
		return
	}
	ctx := s.runCtx
	s.wg.Go(func() {
		if err := s.runPackage(ctx, id); err != nil && ctx.Err() == nil {
			s.log.Error("package step", "deployment", id, "err", err)
		}
	})
}

func (s *Service) runPackage(ctx context.Context, id string) error {
	var (
		d *model.Deployment
		m *manifest.Manifest
	)
	err := s.store.View(func(tx model.Tx) error {
		var err error
		if d, err = tx.Deployment(id); err != nil || d.Package == nil || !d.Package.Pending {
			return err
		}
		for _, app := range d.Applications {
			if app.Name == d.Package.Application {
				m, err = releaseManifest(tx, app.ReleaseID)
			}
		}
		return err
	})
	if err != nil || m == nil {
		return err
	}
	res, perr := build.PackageResult{}, errors.New("the controller has no packager")
	if s.packager != nil {
		var r *build.PackageResult
		r, perr = s.packager.Package(ctx, m, s.chunk, m.Spec.Package, s.packagePath(id, d.Package.File))
		if r != nil {
			res = *r
		}
	}
	if ctx.Err() != nil {
		return ctx.Err() // stopping: the next controller runs it again
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err = s.update(id, func(tx model.Tx, d *model.Deployment) error {
		if d.Package == nil || !d.Package.Pending {
			return errUnchanged
		}
		p := d.Package
		p.Pending, p.Ran, p.SizeBytes, p.Duration, p.Output = false, true, res.SizeBytes, res.Duration, res.Log
		if perr != nil {
			p.Error, p.SizeBytes = perr.Error()+"; the deployment stays DEPLOYED", 0
		}
		return nil
	})
	if err != nil || d == nil {
		return err
	}
	s.log.Info("package step done", "deployment", id, "environment", d.Environment, "application", d.Package.Application, "bytes", d.Package.SizeBytes, "error", d.Package.Error)
	s.watchers.publish(d)
	return nil
}

// chunk reads one chunk from the store.
func (s *Service) chunk(id manifest.ChunkID) ([]byte, error) {
	var b []byte
	err := s.store.View(func(tx model.Tx) error {
		var err error
		b, err = tx.Chunk(id)
		return err
	})
	return b, err
}

func (s *Service) packagePath(id, file string) string {
	return filepath.Join(s.packageDir, id, file)
}

// PackageFile is the file the package step of a deployment produced, open
// for reading. The caller closes Content.
type PackageFile struct {
	// Name is its file name.
	Name string
	// SizeBytes is its size.
	SizeBytes int64
	// Time is when it was produced.
	Time time.Time
	// Content reads the file.
	Content io.ReadCloser
}

// Package opens the file the package step of deployment id produced.
// Errors: NotFound for an unknown deployment; FailedPrecondition when it
// has no package (no package step, nothing changed, still running, or it
// failed).
func (s *Service) Package(ctx context.Context, id string) (*PackageFile, error) {
	d, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	p := d.Package
	switch {
	case p == nil:
		return nil, fmt.Errorf("deployment %s has no package: it is %s, and the package step runs only after a deployment is DEPLOYED whose app spec has `package:`: %w", id, d.State, errkind.FailedPrecondition)
	case p.Pending:
		return nil, fmt.Errorf("the package step of deployment %s is still running; retry when `cutoverctl deploy get %s` shows it done: %w", id, id, errkind.FailedPrecondition)
	case !p.Ran:
		return nil, fmt.Errorf("deployment %s has no package: no file matching when_changed differs from the previous release, so the package step did not run; the last deployment that ran it has the current package: %w", id, errkind.FailedPrecondition)
	case p.Error != "":
		return nil, fmt.Errorf("the package step of deployment %s failed: %s: %w", id, p.Error, errkind.FailedPrecondition)
	}
	path := s.packagePath(id, p.File)
	f, err := os.Open(path)
	var info os.FileInfo
	if err == nil {
		if info, err = f.Stat(); err != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the package of deployment %s is recorded but %s cannot be read (%v); it was removed from the controller's data directory: %w", id, path, err, errkind.DataLoss)
	}
	return &PackageFile{Name: p.File, SizeBytes: info.Size(), Time: info.ModTime(), Content: f}, nil
}
