// Package sourceroot confines application sources to the directories the
// controller's operator allows (--source-root): the controller runs a
// registered application's build command, so a caller must not point it
// at any directory of the machine.
package sourceroot

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// Roots are the directories application sources may live under.
type Roots []string

// Check returns dir with its symbolic links resolved if it lies under one
// of the roots (their links resolved too). InvalidArgument otherwise,
// also when a link inside dir's path leads out of the roots, and NotFound
// when dir does not exist.
func (r Roots) Check(dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("source_dir %q is relative: give the absolute path of the directory on the controller's machine: %w", dir, errkind.InvalidArgument)
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(dir))
	if err != nil {
		return "", fmt.Errorf("source_dir %q: %v: %w", dir, err, errkind.NotFound)
	}
	for _, root := range r {
		rr, err := filepath.EvalSymlinks(filepath.Clean(root))
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(rr, real); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel) {
			return real, nil
		}
	}
	return "", fmt.Errorf("source_dir %q (%s once links are followed) is not under a source root of the controller (%s); put the sources there, or start the controller with --source-root; nothing was registered: %w",
		dir, real, strings.Join(r, ", "), errkind.InvalidArgument)
}
