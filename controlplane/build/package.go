package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// The package step (cutover.yaml `package:`) builds a file from a release
// after it was activated, as LifeTime regenerates a mobile app package: the
// release is written from its chunks into a scratch directory, the command
// runs there with a time limit, and the file it produced is copied out.

// PackageResult is a finished package step.
type PackageResult struct {
	// SizeBytes is the size of the produced file.
	SizeBytes int64
	// Duration is how long the step took, the scratch copy included.
	Duration time.Duration
	// Log holds the last lines of the command's output.
	Log string
}

// Package writes release m (its chunks read with chunk) into a scratch
// directory, runs pkg.Command there (bounded by pkg.Timeout, or
// appspec.DefaultHookTimeout), and copies the file pkg.Output to dest
// (written beside it, fsynced, renamed into place). The scratch directory
// is removed. Errors say what failed, with the command's last output.
func (b *Builder) Package(ctx context.Context, m *manifest.Manifest, chunk func(manifest.ChunkID) ([]byte, error), pkg *appspec.Package, dest string) (*PackageResult, error) {
	start := time.Now()
	if err := os.MkdirAll(b.cfg.ScratchDir, 0o700); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(b.cfg.ScratchDir, m.Application+"-package-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	if err := writeRelease(scratch, m, chunk); err != nil {
		return nil, fmt.Errorf("write release of %s into a scratch directory: %w", m.Application, err)
	}
	timeout := pkg.Timeout
	if timeout == 0 {
		timeout = appspec.DefaultHookTimeout
	}
	log := &tail{max: 30}
	res := &PackageResult{}
	err = shell(ctx, scratch, pkg.Command, timeout, log)
	res.Log = log.String()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return res, fmt.Errorf("package step %q did not finish within %v and was killed", pkg.Command, timeout)
	case err != nil:
		return res, fmt.Errorf("package step %q failed (%v)", pkg.Command, err)
	}
	info, err := os.Lstat(filepath.Join(scratch, filepath.FromSlash(pkg.Output)))
	if err != nil || !info.Mode().IsRegular() {
		return res, fmt.Errorf("package step %q exited 0 but produced no file %s", pkg.Command, pkg.Output)
	}
	out, err := outputDir(scratch, filepath.Dir(pkg.Output)) // a directory symlinked out of the scratch copy is refused
	if err != nil {
		return res, fmt.Errorf("package step %q: output %s: %w", pkg.Command, pkg.Output, err)
	}
	produced := filepath.Join(out, filepath.Base(pkg.Output))
	if err := os.MkdirAll(filepath.Dir(dest), 0o750); err != nil {
		return res, err
	}
	tmp := dest + ".tmp"
	_ = os.Remove(tmp) // a leftover of a crash
	if err := copyFile(produced, tmp, 0o640); err != nil {
		return res, fmt.Errorf("keep the package: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return res, err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return res, fmt.Errorf("keep the package: %w", err)
	}
	res.SizeBytes, res.Duration = info.Size(), time.Since(start)
	return res, nil
}

// writeRelease writes the files of m into dir from their chunks.
func writeRelease(dir string, m *manifest.Manifest, chunk func(manifest.ChunkID) ([]byte, error)) error {
	for _, f := range m.Files {
		name := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		switch {
		case f.Mode.IsDir():
			if err := os.MkdirAll(name, f.Mode.Perm()|0o700); err != nil {
				return err
			}
		case f.Mode&fs.ModeSymlink != 0:
			if err := os.Symlink(f.Link, name); err != nil {
				return err
			}
		default:
			out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode.Perm()|0o600)
			if err != nil {
				return err
			}
			for _, c := range f.Chunks {
				data, err := chunk(c.ID)
				if err == nil {
					_, err = out.Write(data)
				}
				if err != nil {
					out.Close()
					return fmt.Errorf("%s: %w", f.Path, err)
				}
			}
			if err := out.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
