package activate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cutover-dev/cutover/agent/layout"
	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/logging"
)

// StopApp stops app on purpose (`cutoverctl app stop`): it removes the
// app's `current` link, durably (the app directory is fsynced), so that a
// restarted agent does not start it again, then stops its process. The
// front-end then runs nothing for app; its staged releases stay, and a
// reconcile or the next deployment starts it again. An app that runs
// nothing is fine. It runs under the Activator's mutex, like Rollback, so
// it never interleaves with an arm, a commit or a rollback. Errors:
// InvalidArgument for a bad name; otherwise what the file system or the
// process supervisor says.
func (a *Activator) StopApp(ctx context.Context, app string) error {
	if err := appspec.ValidName(app); err != nil {
		return fmt.Errorf("application name: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	was, _ := layout.Current(a.cfg.Root, app)
	if _, err := os.Stat(layout.AppDir(a.cfg.Root, app)); errors.Is(err, fs.ErrNotExist) {
		// never deployed here: no link to remove
	} else if err := removeCurrent(a.cfg.Root, app); err != nil {
		return fmt.Errorf("stop %s: remove its current link (the app still runs): %w", app, err)
	}
	if err := a.cfg.Processes.Stop(ctx, app); err != nil {
		return fmt.Errorf("stop %s: its current link is removed, but its process did not stop: %w", app, err)
	}
	a.cfg.Log.Info("application stopped on request", logging.KeyApplication, app, logging.KeyRelease, was)
	return nil
}
