// Package build turns an application's source directory into a release: it
// copies the source to a scratch directory, runs the app spec's build command
// there with a time limit, and chunks the build output into a manifest and
// content-addressed chunks (pkg/manifest).
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/controlplane/migrate"
	"github.com/cutover-dev/cutover/controlplane/sourceroot"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/manifest"
)

// DefaultTimeout bounds a build whose spec and Config set none.
const DefaultTimeout = 10 * time.Minute

// Config configures a Builder.
type Config struct {
	// ScratchDir holds the scratch copies; each build gets its own subdirectory.
	ScratchDir string
	// Timeout bounds a build when the app spec sets no build.timeout.
	Timeout time.Duration
	// Log receives one line per build.
	Log *slog.Logger
	// Sink stores the release's chunks.
	Sink manifest.ChunkSink
	// SourceRoots, when set, are checked again before each build (a source
	// directory may have been replaced by a link since it was registered).
	SourceRoots sourceroot.Roots
	// MaxFiles and MaxBytes bound the release a build makes (zero: the
	// limits of pkg/manifest, which they may only lower).
	MaxFiles int
	MaxBytes int64
}

// Builder builds releases.
type Builder struct {
	cfg Config
}

// New returns a Builder.
func New(cfg Config) *Builder {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxFiles <= 0 || cfg.MaxFiles > manifest.MaxFiles {
		cfg.MaxFiles = manifest.MaxFiles
	}
	if cfg.MaxBytes <= 0 || cfg.MaxBytes > manifest.MaxReleaseBytes {
		cfg.MaxBytes = manifest.MaxReleaseBytes
	}
	return &Builder{cfg: cfg}
}

// Result is a finished build.
type Result struct {
	// ReleaseID is the content address of the release.
	ReleaseID string
	// Manifest describes the release.
	Manifest *manifest.Manifest
	// ManifestBytes is the canonical encoding; its SHA-256 is ReleaseID.
	ManifestBytes []byte
	// Spec is the app spec read from the source.
	Spec *appspec.Spec
	// Migrations are the release's migration files (Spec.Migrations inside
	// the build output), in version order; none when Spec.Migrations is empty.
	Migrations []migrate.File
	// OutputDir holds the build output until Cleanup.
	OutputDir string
	// Log holds the last lines of the build's output.
	Log string
	// Duration is how long the build took, copy and chunking included.
	Duration time.Duration

	scratch string
}

// Cleanup removes the scratch directory.
func (r *Result) Cleanup() error { return os.RemoveAll(r.scratch) }

// Build builds application app from sourceDir. Errors: errkind.NotFound or
// InvalidArgument for a missing or bad app spec, or an app spec whose name is
// not app; InvalidArgument for a build output that holds a path or symlink
// leading outside it; FailedPrecondition when the build command fails or
// times out (the message ends with the last lines of its output);
// ResourceExhausted for a build output with more files or bytes than the
// limits (checked before any chunk is made), or whose manifest is too large.
// On error the scratch directory is removed and nothing is kept but chunks
// already handed to the sink.
func (b *Builder) Build(ctx context.Context, app, sourceDir string) (_ *Result, err error) {
	start := time.Now()
	if b.cfg.SourceRoots != nil {
		if sourceDir, err = b.cfg.SourceRoots.Check(sourceDir); err != nil {
			return nil, fmt.Errorf("build %s: %w", app, err)
		}
	}
	if err := os.MkdirAll(b.cfg.ScratchDir, 0o700); err != nil {
		return nil, fmt.Errorf("build %s: create scratch dir: %w", app, err)
	}
	scratch, err := os.MkdirTemp(b.cfg.ScratchDir, app+"-")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", app, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(scratch)
		}
	}()
	src := filepath.Join(scratch, "src")
	if err := copyTree(sourceDir, src); err != nil {
		return nil, fmt.Errorf("build %s: copy %s to a scratch directory: %w", app, sourceDir, err)
	}
	spec, err := appspec.Load(src)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", app, err)
	}
	if spec.Name != app {
		return nil, fmt.Errorf("build %s: %s names the application %q: %w", app, appspec.FileName, spec.Name, errkind.InvalidArgument)
	}
	log := &tail{max: 40}
	if spec.Build.Command != "" {
		if err := b.run(ctx, src, spec, log); err != nil {
			return nil, err
		}
	}
	out, err := outputDir(src, spec.OutputDir())
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", app, err)
	}
	if err := b.checkLimits(out, spec); err != nil {
		return nil, fmt.Errorf("build %s: %w", app, err)
	}
	m, err := manifest.Build(ctx, out, app, *spec, b.cfg.Sink)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", app, err)
	}
	migrations, err := loadMigrations(out, spec)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", app, err)
	}
	enc := m.Encode()
	if len(enc) > manifest.MaxEncodedBytes {
		return nil, fmt.Errorf("build %s: the release's manifest is %d bytes, more than the %d allowed (see docs/limits.md): %d files, many or long paths; nothing was sent to the agents: leave what the release does not need out of build.output %q: %w",
			app, len(enc), manifest.MaxEncodedBytes, len(m.Files), spec.OutputDir(), errkind.ResourceExhausted)
	}
	r := &Result{
		Migrations:    migrations,
		ReleaseID:     manifest.ReleaseID(enc),
		Manifest:      m,
		ManifestBytes: enc,
		Spec:          spec,
		OutputDir:     out,
		Log:           log.String(),
		Duration:      time.Since(start),
		scratch:       scratch,
	}
	b.cfg.Log.Info("built release", "application", app, "release", r.ReleaseID, "bytes", m.Size(), "files", len(m.Files), "duration", r.Duration)
	return r, nil
}

func (b *Builder) run(ctx context.Context, dir string, spec *appspec.Spec, log *tail) error {
	timeout := spec.Build.Timeout
	if timeout == 0 {
		timeout = b.cfg.Timeout
	}
	err := shell(ctx, dir, spec.Build.Command, timeout, log)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("build %s: %q did not finish within %v; nothing was sent to the agents; make the build faster or raise build.timeout. Last output:\n%s: %w",
			spec.Name, spec.Build.Command, timeout, log.String(), errkind.FailedPrecondition)
	case ctx.Err() != nil:
		return fmt.Errorf("build %s: %w", spec.Name, ctx.Err())
	default:
		return fmt.Errorf("build %s: %q failed (%v); nothing was sent to the agents; fix the build and prepare again. Last output:\n%s: %w",
			spec.Name, spec.Build.Command, err, log.String(), errkind.FailedPrecondition)
	}
}

// shell runs command with `sh -c` in dir, its output to out, in its own
// process group killed whole after timeout (the error then wraps
// context.DeadlineExceeded).
func shell(ctx context.Context, dir, command string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// checkLimits walks the build output in out, before anything is chunked,
// and refuses with errkind.ResourceExhausted one that holds more entries or
// bytes than the builder allows. It stops at the first excess.
func (b *Builder) checkLimits(out string, spec *appspec.Spec) error {
	files, bytes := 0, int64(0)
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == out {
			return err
		}
		if files++; files > b.cfg.MaxFiles {
			return fmt.Errorf("the build output %q holds more than %d files, directories and symlinks, the most a release may hold (see docs/limits.md); nothing was stored or sent to the agents: leave what the release does not need (caches, sources, tests) out of build.output: %w",
				spec.OutputDir(), b.cfg.MaxFiles, errkind.ResourceExhausted)
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			if bytes += info.Size(); bytes > b.cfg.MaxBytes {
				return fmt.Errorf("the build output %q holds more than %d bytes, the most a release may hold (see docs/limits.md); nothing was stored or sent to the agents: leave what the release does not need (caches, sources, tests) out of build.output: %w",
					spec.OutputDir(), b.cfg.MaxBytes, errkind.ResourceExhausted)
			}
		}
		return nil
	})
	return err
}

// loadMigrations reads the migration files of the release in out: those of
// the directory spec.Migrations names, relative to the release. A missing
// directory or two files with one version are errkind.InvalidArgument.
func loadMigrations(out string, spec *appspec.Spec) ([]migrate.File, error) {
	if spec.Migrations == "" {
		return nil, nil
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(out, filepath.FromSlash(spec.Migrations)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("migrations %q: no such directory in the build output (%s names it); create it, or remove migrations from %s: %w",
			spec.Migrations, appspec.FileName, appspec.FileName, errkind.InvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("migrations %q: %w", spec.Migrations, err)
	}
	if dir != out && !strings.HasPrefix(dir, out+string(filepath.Separator)) {
		return nil, fmt.Errorf("migrations %q leads outside the build output: %w", spec.Migrations, errkind.InvalidArgument)
	}
	files, err := migrate.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("migrations %q: %w", spec.Migrations, err)
	}
	return files, nil
}

// outputDir resolves build.output inside src, refusing one that leads outside.
func outputDir(src, rel string) (string, error) {
	out, err := filepath.EvalSymlinks(filepath.Join(src, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("build.output %q does not exist after the build: %w", rel, errkind.FailedPrecondition)
	}
	if err != nil {
		return "", err
	}
	realSrc, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", err
	}
	if out != realSrc && !strings.HasPrefix(out, realSrc+string(filepath.Separator)) {
		return "", fmt.Errorf("build.output %q leads outside the source directory: %w", rel, errkind.InvalidArgument)
	}
	if fi, err := os.Stat(out); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("build.output %q is not a directory: %w", rel, errkind.FailedPrecondition)
	}
	return out, nil
}
