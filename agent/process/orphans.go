package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/pkg/logging"
)

const pidSuffix = ".pid"

func (s *Supervisor) pidFile(app string) string {
	return filepath.Join(s.cfg.RunDir, app+pidSuffix)
}

func (s *Supervisor) writePID(app string, pid int) {
	if s.cfg.RunDir == "" {
		return
	}
	err := os.MkdirAll(s.cfg.RunDir, 0o750)
	if err == nil {
		err = os.WriteFile(s.pidFile(app), []byte(strconv.Itoa(pid)+"\n"), 0o640)
	}
	if err != nil {
		s.cfg.Log.Warn("pid file not written; a restarted agent could not stop this process", logging.KeyApplication, app, "error", err)
	}
}

func (s *Supervisor) removePID(app string) {
	if s.cfg.RunDir != "" {
		_ = os.Remove(s.pidFile(app))
	}
}

// StopOrphans stops the app processes that a previous agent, which did not
// stop cleanly, left running: for each pid file in RunDir whose process is
// still the app it names (CUTOVER_APP in its environment), it sends SIGTERM
// to the group, then SIGKILL after grace, and waits until the group is gone.
// Call it before starting any app.
func (s *Supervisor) StopOrphans(ctx context.Context, grace time.Duration) error {
	if s.cfg.RunDir == "" {
		return nil
	}
	entries, err := os.ReadDir(s.cfg.RunDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		app, ok := strings.CutSuffix(e.Name(), pidSuffix)
		if !ok {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(s.cfg.RunDir, e.Name()))
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && pid > 1 && runsApp(pid, app) {
			s.cfg.Log.Warn("stopping an app process left running by the previous agent", logging.KeyApplication, app, "pid", pid)
			if err := stopGroup(ctx, pid, grace); err != nil {
				return fmt.Errorf("stop the orphaned process group %d of %q: %w", pid, app, err)
			}
		}
		_ = os.Remove(filepath.Join(s.cfg.RunDir, e.Name()))
	}
	return nil
}

// runsApp reports whether pid is a live process started for app.
func runsApp(pid int, app string) bool {
	env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return false
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if string(kv) == "CUTOVER_APP="+app {
			return true
		}
	}
	return false
}

// stopGroup sends SIGTERM to group pgid, SIGKILL after grace, and waits
// until no process of the group is left.
func stopGroup(ctx context.Context, pgid int, grace time.Duration) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	killAt := time.Now().Add(grace)
	killed := false
	for syscall.Kill(-pgid, 0) == nil {
		if !killed && time.Now().After(killAt) {
			killGroup(pgid)
			killed = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
