package process

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestStopLegacy(t *testing.T) {
	dir, runDir := t.TempDir(), t.TempDir()
	// An app left running by a crashed agent: own group, ignores SIGTERM.
	cmd := exec.Command("/bin/sh", "-c", `trap "" TERM; touch ready; sleep 100`)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CUTOVER_APP=hello")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }() // the reaper an orphan gets from init
	waitFor(t, "orphan ready", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
	pid := cmd.Process.Pid
	write := func(app string, pid int) {
		if err := os.WriteFile(filepath.Join(runDir, app+legacySuffix), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("hello", pid)
	write("other", os.Getpid()) // a live process that is not the app: left alone

	for _, app := range []string{"hello", "other"} {
		if err := stopLegacy(context.Background(), filepath.Join(runDir, app+legacySuffix), 100*time.Millisecond, nil); err != nil {
			t.Fatal(err)
		}
	}
	<-waited
	if syscall.Kill(-pid, 0) == nil {
		t.Errorf("orphaned group %d still alive", pid)
	}
	entries, _ := os.ReadDir(runDir)
	if len(entries) != 0 {
		t.Errorf("pid files left: %v", entries)
	}
}

func TestRecordFollowsTheProcess(t *testing.T) {
	dir, runDir := t.TempDir(), t.TempDir()
	s := New(Config{RunDir: runDir})
	if err := s.Start(Spec{Application: "hello", Release: "r1", Dir: dir, Command: "exec sleep 100"}); err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info("hello")
	path := filepath.Join(runDir, "hello.json")
	rec, err := readRecord(path)
	if err != nil || rec.PID != info.PID || rec.PGID != info.PID || rec.Release != "r1" || rec.Spec.Command != "exec sleep 100" || rec.liveness() != pidAlive {
		t.Errorf("record = %+v, %v; want pid %d", rec, err, info.PID)
	}
	if err := s.Stop(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("record after stop: %v", err)
	}
}
