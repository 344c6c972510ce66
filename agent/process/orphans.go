package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/pkg/logging"
)

// KillRecorded kills (SIGKILL) the process groups of the app processes
// recorded in runDir, the RunDir of an agent that has exited and left its
// apps running, waits until they are gone (or ctx ends), and removes the
// records. For tests and tools that clean up after an agent.
func KillRecorded(ctx context.Context, runDir string) error {
	if runDir == "" {
		return nil
	}
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		path := filepath.Join(runDir, e.Name())
		switch name := e.Name(); {
		case strings.HasSuffix(name, roleMain): // and roleNext
			rec, err := readRecord(path)
			if err == nil {
				switch rec.liveness() {
				case pidAlive:
					if err := stopGroup(ctx, rec.PGID, 0); err != nil {
						return fmt.Errorf("stop the orphaned process group %d of %q: %w", rec.PGID, rec.Application, err)
					}
				case pidGone:
					killGroup(rec.PGID)
				}
				if rec.HealthSocket != "" {
					_ = os.Remove(rec.HealthSocket)
				}
			}
		case strings.HasSuffix(name, legacySuffix):
			if err := stopLegacy(ctx, path, 0, nil); err != nil {
				return err
			}
			continue
		}
		_ = os.Remove(path)
	}
	return nil
}

// stopLegacy stops the process an older agent's plain pid file names, if
// it still runs the app of the file's name: SIGTERM to its group, SIGKILL
// after grace (at once when grace is 0), logged on log unless it is nil.
// It removes the file.
func stopLegacy(ctx context.Context, path string, grace time.Duration, log *slog.Logger) error {
	app := strings.TrimSuffix(filepath.Base(path), legacySuffix)
	b, _ := os.ReadFile(path)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && pid > 1 && runsApp(pid, app) {
		if log != nil {
			log.Warn("stopping an app process left running by an older agent", logging.KeyApplication, app, "pid", pid)
		}
		if err := stopGroup(ctx, pid, grace); err != nil {
			return fmt.Errorf("stop the orphaned process group %d of %q: %w", pid, app, err)
		}
	}
	_ = os.Remove(path)
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

// stopGroup sends SIGTERM to group pgid, SIGKILL after grace (at once when
// grace is 0), and waits until no process of the group is left.
func stopGroup(ctx context.Context, pgid int, grace time.Duration) error {
	if grace > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
	}
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
