package process

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
)

func TestFDName(t *testing.T) {
	for _, tc := range []struct {
		l    appspec.Listener
		want string
	}{
		{appspec.Listener{Network: "tcp", Address: "127.0.0.1:8080"}, "tcp-127.0.0.1-8080"},
		{appspec.Listener{Network: "tcp", Address: "[::]:80"}, "tcp------80"},
		{appspec.Listener{Network: "unix", Address: "/run/app/web.sock"}, "unix-run-app-web.sock"},
	} {
		if got := FDName(tc.l); got != tc.want {
			t.Errorf("FDName(%v) = %q, want %q", tc.l, got, tc.want)
		}
	}
}

func TestListenScript(t *testing.T) {
	const pro = "LISTEN_PID=$$; export LISTEN_PID; "
	for _, tc := range []struct{ command, want string }{
		{"bin/app --port 80", pro + "exec bin/app --port 80"},
		{"python3 app.py > log 2>&1", pro + "exec python3 app.py > log 2>&1"},
		{"'/opt/my app/bin' $FLAGS", pro + "exec '/opt/my app/bin' $FLAGS"},
		{"cd web && exec bin/app", pro + "cd web && exec bin/app"},
		{"exec bin/app", pro + "exec bin/app"},
		{"PORT=1 bin/app", pro + "PORT=1 bin/app"},
		{"if true; then bin/app; fi", pro + "if true; then bin/app; fi"},
		{"bin/a | bin/b", pro + "bin/a | bin/b"},
		{"bin/a\nbin/b", pro + "bin/a\nbin/b"},
	} {
		if got := listenScript(tc.command); got != tc.want {
			t.Errorf("listenScript(%q) = %q, want %q", tc.command, got, tc.want)
		}
	}
}

// listenSpec is a spec of the Go test app (or command) on a tcp port and a
// unix socket in dir.
func listenSpec(dir, release, command string) Spec {
	return Spec{Application: "web", Release: release, Dir: dir, Command: command, StopGrace: 10 * time.Second,
		Listen: []appspec.Listener{{Network: "tcp", Address: "127.0.0.1:0"}, {Network: "unix", Address: filepath.Join(dir, "web.sock")}}}
}

func TestAppsGetTheSockets(t *testing.T) {
	py, err := exec.LookPath("python3")
	for _, tc := range []struct {
		name    string
		command func(t *testing.T, dir string) string
	}{
		{"go", func(t *testing.T, _ string) string { return goAppCommand(t) }},
		{"python", func(t *testing.T, dir string) string {
			if err != nil {
				t.Skip("no python3")
			}
			if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(pythonApp), 0o644); err != nil {
				t.Fatal(err)
			}
			return py + " app.py"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortTempDir(t)
			s := New(Config{RunDir: filepath.Join(dir, "run"), Env: goAppEnv})
			t.Cleanup(func() { _ = s.StopAll(context.Background()) })
			spec := listenSpec(dir, "r1", tc.command(t, dir))
			if err := s.Start(spec); err != nil {
				t.Fatal(err)
			}
			info, _ := s.Info("web")
			if len(info.Addrs) != 2 || strings.HasSuffix(info.Addrs[0], ":0") || info.Addrs[1] != spec.Listen[1].Address {
				t.Fatalf("Addrs = %q", info.Addrs)
			}
			tcp, unixPath := info.Addrs[0], info.Addrs[1]
			waitServes(t, tcp)
			wantNames := "tcp-127.0.0.1-0:unix-" + strings.ReplaceAll(strings.TrimPrefix(unixPath, "/"), "/", "-") + ":" + appspec.HealthFDName
			for _, addr := range []string{tcp, unixPath, info.HealthSocket} {
				env := getEnv(t, addr)
				if env.PID != info.PID || env.ListenPID != strconv.Itoa(info.PID) || env.ListenFDs != "3" || env.FDNames != wantNames || env.Release != "r1" {
					t.Errorf("%s: env = %+v; want pid %d, names %q", addr, env, info.PID, wantNames)
				}
				if len(env.Names) != 3 || env.Names[2] != appspec.HealthFDName {
					t.Errorf("%s: names seen by the app = %q", addr, env.Names)
				}
			}
			if fi, err := os.Stat(info.HealthSocket); err != nil || fi.Mode().Perm() != 0o600 || filepath.Dir(info.HealthSocket) != filepath.Join(dir, "run") {
				t.Errorf("health socket %s: %v, %v", info.HealthSocket, fi, err)
			}
			if err := s.Stop(context.Background(), "web"); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(info.HealthSocket); !os.IsNotExist(err) {
				t.Errorf("health socket after Stop: %v", err)
			}
			if _, err := get(tcp, "/"); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("GET after Stop = %v, want connection refused: the socket was not closed", err)
			}
		})
	}
}

func TestOverlapHandsOverWithoutAFailedRequest(t *testing.T) {
	dir := shortTempDir(t)
	runDir := filepath.Join(dir, "run")
	s := New(Config{RunDir: runDir, Env: goAppEnv})
	t.Cleanup(func() { _ = s.StopAll(context.Background()) })
	if err := s.Start(listenSpec(dir, "r1", goAppCommand(t))); err != nil {
		t.Fatal(err)
	}
	old, _ := s.Info("web")
	addr := old.Addrs[0]
	waitServes(t, addr)
	hs := []*hammer{startHammer(t, addr), startHammer(t, old.Addrs[1])}

	h, err := s.Overlap(listenSpec(dir, "r2", goAppCommand(t)))
	if err != nil {
		t.Fatal(err)
	}
	if h.HealthSocket() == "" || h.HealthSocket() == old.HealthSocket || h.Started().IsZero() {
		t.Fatalf("handover: health %q (old %q), started %v", h.HealthSocket(), old.HealthSocket, h.Started())
	}
	waitServes(t, h.HealthSocket())
	body, _ := get(h.HealthSocket(), "/")
	newPID := pidOf(body)
	if !strings.HasPrefix(body, "r2 ") || newPID == old.PID {
		t.Fatalf("health socket answers %q", body)
	}
	if _, err := os.Stat(filepath.Join(runDir, "web.next.json")); err != nil {
		t.Errorf("record of the new process: %v", err)
	}
	if _, err := s.Overlap(listenSpec(dir, "r3", goAppCommand(t))); !errors.Is(err, errkind.FailedPrecondition) {
		t.Errorf("second Overlap = %v, want FailedPrecondition", err)
	}
	n := hs[0].count()
	waitFor(t, "requests during the overlap", func() bool { return hs[0].count() > n+20 })

	sent := h.Finish()
	if sent.Before(h.Started()) {
		t.Errorf("Finish = %v, before the start %v", sent, h.Started())
	}
	if again := h.Finish(); !again.Equal(sent) {
		t.Errorf("second Finish = %v, want %v", again, sent)
	}
	waitFor(t, "old process gone", func() bool { return !alive(old.PID) || zombie(old.PID) })
	for _, hm := range hs {
		waitFor(t, "answers from r2", func() bool { return hm.lastRelease() == "r2" })
		n := hm.count()
		waitFor(t, "more requests", func() bool { return hm.count() > n+20 })
		if hm.lastRelease() != "r2" {
			t.Errorf("last answer from %q, want r2", hm.lastRelease())
		}
		hm.finish(t)
	}
	info, _ := s.Info("web")
	if info.PID != newPID || info.Release != "r2" || info.HealthSocket != h.HealthSocket() {
		t.Errorf("Info after Finish = %+v, want pid %d on r2", info, newPID)
	}
	rec, err := readRecord(filepath.Join(runDir, "web.json"))
	if err != nil || rec.PID != newPID {
		t.Errorf("record after Finish = %+v, %v; want pid %d", rec, err, newPID)
	}
	if _, err := os.Stat(filepath.Join(runDir, "web.next.json")); !os.IsNotExist(err) {
		t.Errorf("next record after Finish: %v", err)
	}
}

func TestAbortLeavesTheOldServing(t *testing.T) {
	dir := shortTempDir(t)
	s := New(Config{RunDir: filepath.Join(dir, "run"), Env: goAppEnv})
	t.Cleanup(func() { _ = s.StopAll(context.Background()) })
	if err := s.Start(listenSpec(dir, "r1", goAppCommand(t))); err != nil {
		t.Fatal(err)
	}
	old, _ := s.Info("web")
	waitServes(t, old.Addrs[0])
	h, err := s.Overlap(listenSpec(dir, "r2", goAppCommand(t)))
	if err != nil {
		t.Fatal(err)
	}
	waitServes(t, h.HealthSocket())
	body, _ := get(h.HealthSocket(), "/")
	hm := startHammer(t, old.Addrs[0])
	if err := h.Abort(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pid := pidOf(body); alive(pid) && !zombie(pid) {
		t.Errorf("new process %d alive after Abort", pid)
	}
	if _, err := os.Stat(h.HealthSocket()); !os.IsNotExist(err) {
		t.Errorf("new health socket after Abort: %v", err)
	}
	n := hm.count()
	waitFor(t, "requests after the abort", func() bool { return hm.count() > n+20 })
	hm.finish(t)
	if hm.lastRelease() != "r1" {
		t.Errorf("answers from %q after Abort, want r1", hm.lastRelease())
	}
	if info, _ := s.Info("web"); info.PID != old.PID || info.Release != "r1" {
		t.Errorf("Info after Abort = %+v, want %+v", info, old)
	}
	if !h.Finish().IsZero() {
		t.Error("Finish after Abort did something")
	}
}

func TestOverlapPreconditions(t *testing.T) {
	dir := shortTempDir(t)
	s := New(Config{RunDir: filepath.Join(dir, "run")})
	t.Cleanup(func() { _ = s.StopAll(context.Background()) })
	if _, err := s.Overlap(Spec{Application: "plain", Dir: dir, Command: "exec sleep 100"}); !errors.Is(err, errkind.FailedPrecondition) {
		t.Errorf("Overlap without Listen = %v", err)
	}
	if err := s.Start(Spec{Application: "plain", Dir: dir, Command: "exec sleep 100"}); err != nil {
		t.Fatal(err)
	}
	spec := listenSpec(dir, "r2", "exec sleep 100")
	spec.Application = "plain"
	if _, err := s.Overlap(spec); !errors.Is(err, errkind.FailedPrecondition) {
		t.Errorf("Overlap of a process without sockets = %v", err)
	}
	// Nothing runs: an Overlap is a Start; Finish returns the start time.
	spec.Application = "fresh"
	h, err := s.Overlap(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Finish(); !got.Equal(h.Started()) {
		t.Errorf("Finish without an old process = %v, want %v", got, h.Started())
	}
	if info, ok := s.Info("fresh"); !ok || info.HealthSocket != h.HealthSocket() {
		t.Errorf("Info = %+v, %v", info, ok)
	}
}

func TestCrashRestartKeepsTheSocket(t *testing.T) {
	dir := shortTempDir(t)
	s := New(Config{RunDir: filepath.Join(dir, "run"), Env: goAppEnv, RestartBackoff: 200 * time.Millisecond, LogDir: dir})
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(readFile(filepath.Join(dir, "web.log")))
		}
	})
	t.Cleanup(func() { _ = s.StopAll(context.Background()) })
	if err := s.Start(listenSpec(dir, "r1", goAppCommand(t))); err != nil {
		t.Fatal(err)
	}
	first, _ := s.Info("web")
	waitServes(t, first.Addrs[0])
	hm := startHammer(t, first.Addrs[0])
	_ = syscall.Kill(first.PID, syscall.SIGUSR1) // exits 3
	waitFor(t, "restarted", func() bool {
		info, _ := s.Info("web")
		return info.Restarts >= 1 && info.PID != 0 && info.PID != first.PID
	})
	info, _ := s.Info("web")
	waitFor(t, "answers from the new process", func() bool {
		hm.mu.Lock()
		defer hm.mu.Unlock()
		return pidOf(hm.last) == info.PID
	})
	hm.finish(t)
	if info.Addrs[0] != first.Addrs[0] {
		t.Errorf("address after the restart = %s, want %s", info.Addrs[0], first.Addrs[0])
	}
}
