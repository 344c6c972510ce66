package activate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cutover-dev/cutover/agent/layout"
)

// tmpName is the name of the symlink made beside `current` before the rename.
const tmpName = layout.CurrentName + ".tmp"

// Swap points ROOT/<app>/current at releases/<id> atomically: it creates the
// symlink current.tmp and renames it over current (never remove-then-create),
// then fsyncs ROOT/<app>. At every instant `current` exists (if it existed)
// and resolves to either the old or the new release.
func Swap(root, app, id string) error {
	dir := layout.AppDir(root, app)
	tmp := filepath.Join(dir, tmpName)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	if err := os.Symlink(layout.CurrentTarget(id), tmp); err != nil {
		return fmt.Errorf("swap %q to %s: %w", app, id, err)
	}
	if err := os.Rename(tmp, layout.CurrentPath(root, app)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("swap %q to %s: %w", app, id, err)
	}
	if err := layout.SyncDir(dir); err != nil {
		return fmt.Errorf("swap %q to %s: %w", app, id, err)
	}
	return nil
}

// removeCurrent removes ROOT/<app>/current (absent is fine) and fsyncs ROOT/<app>.
func removeCurrent(root, app string) error {
	if err := os.Remove(layout.CurrentPath(root, app)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return layout.SyncDir(layout.AppDir(root, app))
}

// pointTo makes `current` point at id, or removes it when id is "".
func pointTo(root, app, id string) error {
	if id == "" {
		return removeCurrent(root, app)
	}
	return Swap(root, app, id)
}
