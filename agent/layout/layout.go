// Package layout knows where things live under the agent's --root:
//
//	ROOT/<app>/releases/<release-id>/   a materialized release
//	ROOT/<app>/current -> releases/<release-id>   the running release
//
// and the small file-system steps both staging and activation need
// (reading `current`, fsyncing a directory).
package layout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Names inside ROOT/<app>/.
const (
	ReleasesDirName = "releases"
	CurrentName     = "current"
)

// ValidRelease checks that app is a DNS label and id a release id (64
// lowercase hex digits), so that neither can lead a path outside ROOT.
// Errors are errkind.InvalidArgument.
func ValidRelease(app, id string) error {
	if err := appspec.ValidName(app); err != nil {
		return fmt.Errorf("application: %w", err)
	}
	if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("release id %q of %q is not 64 lowercase hex digits: %w", id, app, errkind.InvalidArgument)
	}
	return nil
}

// AppDir returns ROOT/<app>.
func AppDir(root, app string) string { return filepath.Join(root, app) }

// ReleasesDir returns ROOT/<app>/releases.
func ReleasesDir(root, app string) string {
	return filepath.Join(root, app, ReleasesDirName)
}

// ReleaseDir returns ROOT/<app>/releases/<id>.
func ReleaseDir(root, app, id string) string {
	return filepath.Join(root, app, ReleasesDirName, id)
}

// CurrentPath returns ROOT/<app>/current.
func CurrentPath(root, app string) string { return filepath.Join(root, app, CurrentName) }

// CurrentTarget returns the symlink target for release id, relative to ROOT/<app>.
func CurrentTarget(id string) string { return path.Join(ReleasesDirName, id) }

// Current returns the release `current` points to, "" if there is no
// `current`. A `current` that is not a symlink into releases/ is an error
// (errkind.FailedPrecondition).
func Current(root, app string) (string, error) {
	p := CurrentPath(root, app)
	target, err := os.Readlink(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %v; it should be a symlink to releases/<id>, fix or remove it: %w", p, err, errkind.FailedPrecondition)
	}
	id, ok := strings.CutPrefix(path.Clean(filepath.ToSlash(target)), ReleasesDirName+"/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("%s points to %q, not to releases/<id>; fix or remove it: %w", p, target, errkind.FailedPrecondition)
	}
	return id, nil
}

// Apps returns the applications that have a directory under root, sorted.
func Apps(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var apps []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			apps = append(apps, e.Name())
		}
	}
	sort.Strings(apps)
	return apps, nil
}

// SyncDir fsyncs a directory, so that the entries created, renamed or
// removed in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// MkdirAllSynced creates dir and its missing parents, fsyncing each parent
// in which it created an entry.
func MkdirAllSynced(dir string, perm fs.FileMode) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAllSynced(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return SyncDir(parent)
}

// NextName is the symlink that arm prepares beside `current`; commit
// renames it over `current`.
const NextName = CurrentName + ".next"

// NextPath returns ROOT/<app>/current.next.
func NextPath(root, app string) string { return filepath.Join(root, app, NextName) }
