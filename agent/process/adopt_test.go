package process

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestDetachThenAdopt(t *testing.T) {
	dir := shortTempDir(t)
	runDir := filepath.Join(dir, "run")
	s1 := New(Config{RunDir: runDir, Env: goAppEnv})
	spec := listenSpec(dir, "r1", goAppCommand(t))
	if err := s1.Start(spec); err != nil {
		t.Fatal(err)
	}
	before, _ := s1.Info("web")
	waitServes(t, before.Addrs[0])
	s1.Detach()
	if err := s1.Start(spec); err == nil {
		t.Error("Start after Detach succeeded")
	}
	hm := startHammer(t, before.Addrs[0]) // the app serves on while no agent runs

	s2 := New(Config{RunDir: runDir, Env: goAppEnv})
	t.Cleanup(func() { _ = s2.StopAll(context.Background()) })
	apps, err := s2.Adopt(context.Background())
	if err != nil || !slices.Equal(apps, []string{"web"}) {
		t.Fatalf("Adopt = %v, %v", apps, err)
	}
	info, _ := s2.Info("web")
	if info.PID != before.PID || !info.Adopted || info.SocketsLost != "" || info.HealthSocket != before.HealthSocket ||
		!slices.Equal(info.Addrs, before.Addrs) || info.Release != "r1" {
		t.Fatalf("Info after Adopt = %+v; before %+v", info, before)
	}
	if env := getEnv(t, info.HealthSocket); env.PID != before.PID {
		t.Errorf("health socket reaches pid %d, want %d", env.PID, before.PID)
	}
	if err := s2.Start(spec); err != nil {
		t.Errorf("Start of the adopted release = %v, want nil", err)
	}
	if info, _ := s2.Info("web"); info.PID != before.PID {
		t.Errorf("Start of the adopted release replaced pid %d by %d", before.PID, info.PID)
	}

	// The sockets were taken back: an Overlap hands over as usual.
	h, err := s2.Overlap(listenSpec(dir, "r2", goAppCommand(t)))
	if err != nil {
		t.Fatal(err)
	}
	waitServes(t, h.HealthSocket())
	h.Finish()
	waitFor(t, "the adopted process gone", func() bool { return !alive(before.PID) || zombie(before.PID) })
	waitFor(t, "answers from r2", func() bool { return hm.lastRelease() == "r2" })
	hm.finish(t)
	if info, _ := s2.Info("web"); info.Adopted || info.Release != "r2" {
		t.Errorf("Info after the handover = %+v", info)
	}
}

func TestAdoptStopsAnUnfinishedHandover(t *testing.T) {
	dir := shortTempDir(t)
	runDir := filepath.Join(dir, "run")
	s1 := New(Config{RunDir: runDir, Env: goAppEnv})
	if err := s1.Start(listenSpec(dir, "r1", goAppCommand(t))); err != nil {
		t.Fatal(err)
	}
	old, _ := s1.Info("web")
	h, err := s1.Overlap(listenSpec(dir, "r2", goAppCommand(t)))
	if err != nil {
		t.Fatal(err)
	}
	waitServes(t, h.HealthSocket())
	newPID := getEnv(t, h.HealthSocket()).PID
	s1.Detach()

	s2 := New(Config{RunDir: runDir, Env: goAppEnv})
	t.Cleanup(func() { _ = s2.StopAll(context.Background()) })
	if apps, err := s2.Adopt(context.Background()); err != nil || !slices.Equal(apps, []string{"web"}) {
		t.Fatalf("Adopt = %v, %v", apps, err)
	}
	if info, _ := s2.Info("web"); info.PID != old.PID {
		t.Errorf("adopted pid %d, want the old one %d", info.PID, old.PID)
	}
	waitFor(t, "the unfinished new process gone", func() bool { return !alive(newPID) || zombie(newPID) })
	if _, err := os.Stat(filepath.Join(runDir, "web.next.json")); !os.IsNotExist(err) {
		t.Errorf("next record after Adopt: %v", err)
	}
}

func TestAdoptDropsStaleRecords(t *testing.T) {
	// A process that is not an app: its pid, recorded with another start
	// time, must be left alone.
	bystander := exec.Command("sleep", "100")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	st, err := startTime(bystander.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rec  record
	}{
		{"dead", record{PID: dead.Process.Pid, PGID: dead.Process.Pid, StartTime: 1}},
		{"reused", record{PID: bystander.Process.Pid, PGID: bystander.Process.Pid, StartTime: st + 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDir := t.TempDir()
			s := New(Config{RunDir: runDir})
			tc.rec.Application, tc.rec.Spec = "web", Spec{Application: "web", Dir: runDir, Command: "exec sleep 100"}
			s.writeRecordFile(t, tc.rec)
			apps, err := s.Adopt(context.Background())
			if err != nil || len(apps) != 0 {
				t.Errorf("Adopt = %v, %v; want nothing adopted", apps, err)
			}
			if _, ok := s.Info("web"); ok {
				t.Error("a stale record was adopted")
			}
			if entries, _ := os.ReadDir(runDir); len(entries) != 0 {
				t.Errorf("records left: %v", entries)
			}
			if !alive(bystander.Process.Pid) {
				t.Error("the process that reused the pid was killed")
			}
		})
	}
}

func (s *Supervisor) writeRecordFile(t *testing.T, rec record) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &running{pid: rec.PID, pgid: rec.PGID}
	s.writeRecord(roleMain, rec.Spec, r, nil)
	// writeRecord read the start time of the live pid: put the test's back.
	b, err := os.ReadFile(s.recordPath(roleMain, rec.Application))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readRecord(s.recordPath(roleMain, rec.Application))
	text := strings.Replace(string(b), `"start_time": `+strconv.FormatUint(got.StartTime, 10), `"start_time": `+strconv.FormatUint(rec.StartTime, 10), 1)
	if err := os.WriteFile(s.recordPath(roleMain, rec.Application), []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestKillRecorded(t *testing.T) {
	dir := shortTempDir(t)
	runDir := filepath.Join(dir, "run")
	s := New(Config{RunDir: runDir})
	if err := s.Start(Spec{Application: "stubborn", Dir: dir, Command: `trap "" TERM; sleep 100 & wait`}); err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info("stubborn")
	s.Detach()
	if err := KillRecorded(context.Background(), runDir); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(-info.PID, 0) == nil {
		t.Errorf("group %d alive after KillRecorded", info.PID)
	}
	if entries, _ := os.ReadDir(runDir); len(entries) != 0 {
		t.Errorf("records left: %v", entries)
	}
}
