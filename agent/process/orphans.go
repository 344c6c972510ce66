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

// StopOrphans stops the app processes that a previous agent left running
// instead of adopting them (see Adopt): for each record in RunDir whose
// process still runs (the same pid and start time; for an older agent's
// plain pid file, a process started for the app it names), it sends the
// stop signal to the group, then SIGKILL after grace, and waits until the
// group is gone; it removes every record. Call it before starting any app.
func (s *Supervisor) StopOrphans(ctx context.Context, grace time.Duration) error {
	return stopRecorded(ctx, s.cfg.RunDir, grace, func(app string, pid int) {
		s.cfg.Log.Warn("stopping an app process left running by the previous agent", logging.KeyApplication, app, "pid", pid)
	})
}

// KillRecorded kills (SIGKILL) the process groups of the app processes
// recorded in runDir, the RunDir of an agent that has exited and left its
// apps running, waits until they are gone (or ctx ends), and removes the
// records. For tests and tools that clean up after an agent.
func KillRecorded(ctx context.Context, runDir string) error {
	return stopRecorded(ctx, runDir, 0, nil)
}

// stopRecorded stops the groups recorded in runDir: sigterm, then SIGKILL
// after grace (at once when grace is 0).
func stopRecorded(ctx context.Context, runDir string, grace time.Duration, logf func(app string, pid int)) error {
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
		var app string
		var pgid int
		live := false
		switch name := e.Name(); {
		case strings.HasSuffix(name, roleMain): // and roleNext
			rec, err := readRecord(path)
			if err != nil {
				break
			}
			app, pgid = rec.Application, rec.PGID
			switch rec.liveness() {
			case pidAlive:
				live = true
			case pidGone:
				killGroup(pgid)
			}
			if rec.HealthSocket != "" {
				_ = os.Remove(rec.HealthSocket)
			}
		case strings.HasSuffix(name, legacySuffix):
			app = strings.TrimSuffix(name, legacySuffix)
			b, _ := os.ReadFile(path)
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			live, pgid = err == nil && pid > 1 && runsApp(pid, app), pid
		}
		if live {
			if logf != nil {
				logf(app, pgid)
			}
			if err := stopGroup(ctx, pgid, grace); err != nil {
				return fmt.Errorf("stop the orphaned process group %d of %q: %w", pgid, app, err)
			}
		}
		_ = os.Remove(path)
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

// stopGroup sends SIGTERM to group pgid, SIGKILL after grace (at once when
// grace is 0), and waits
// until no process of the group is left.
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
