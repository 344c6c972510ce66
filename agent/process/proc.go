package process

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
	"github.com/cutover-dev/cutover/pkg/sdnotify"
)

// This file holds one supervised process: how it is spawned (with its
// sockets, environment and log), watched, restarted after a crash and
// stopped.

// proc is one supervised application process (or the new one of an Overlap).
type proc struct {
	sup     *Supervisor
	spec    Spec
	log     *slog.Logger
	adopted bool
	stop    chan struct{} // closed to ask the loop to stop
	detach  chan struct{} // closed to ask the loop to leave the process running
	done    chan struct{} // closed when the loop has ended

	mu        sync.Mutex
	pid       int
	pgid      int
	restarts  int
	health    string
	signalled int // the pid that Finish already sent the stop signal
}

// running is one spawned (or adopted) process.
type running struct {
	pid    int
	pgid   int
	exited chan struct{}
	err    error // set before exited is closed
	start  time.Time
	health string // its private health socket, removed when it exits
}

func (s *Supervisor) newProc(spec Spec) *proc {
	return &proc{sup: s, spec: spec, stop: make(chan struct{}), detach: make(chan struct{}), done: make(chan struct{}),
		log: s.cfg.Log.With(logging.KeyApplication, spec.Application, logging.KeyRelease, spec.Release)}
}

func (p *proc) env() []string {
	env := slices.DeleteFunc(sdnotify.FilterEnv(os.Environ()), func(kv string) bool {
		return strings.HasPrefix(kv, "LISTEN_FDS=") || strings.HasPrefix(kv, "LISTEN_PID=") || strings.HasPrefix(kv, "LISTEN_FDNAMES=")
	})
	for k, v := range p.sup.cfg.Env {
		env = append(env, k+"="+v)
	}
	return append(env, "CUTOVER_RELEASE_ID="+p.spec.Release, "CUTOVER_APP="+p.spec.Application)
}

func (p *proc) output() (*os.File, error) {
	if p.sup.cfg.LogDir == "" {
		return os.Stderr, nil
	}
	if err := os.MkdirAll(p.sup.cfg.LogDir, 0o750); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(p.sup.cfg.LogDir, p.spec.Application+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
}

// spawn starts a process of p's spec on sockets ss (nil without Listen)
// and records it under role. Call with s.mu held.
func (p *proc) spawn(ss *sockets, role string) (*running, error) {
	out, err := p.output()
	if err != nil {
		return nil, fmt.Errorf("start %q: open its log: %w", p.spec.Application, err)
	}
	if out != os.Stderr {
		defer out.Close() // the child holds its own copy
	}
	cmd := exec.Command("/bin/sh", "-c", p.spec.Command)
	cmd.Dir = p.spec.Dir
	cmd.Env = p.env()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	health := ""
	if ss != nil {
		hf, path, err := healthSocket(p.sup.healthDir(), p.spec.Application)
		if err != nil {
			return nil, fmt.Errorf("start %q: its health socket: %v: %w", p.spec.Application, err, errkind.FailedPrecondition)
		}
		defer hf.Close() // only the child serves on it
		health = path
		// exec dups these for the child only: the agent's copies stay close-on-exec.
		cmd.ExtraFiles = append(slices.Clone(ss.files), hf)
		cmd.Env = append(cmd.Env, listenEnv(ss)...)
		cmd.Args[2] = listenScript(p.spec.Command)
	}
	if err := cmd.Start(); err != nil {
		if health != "" {
			_ = os.Remove(health)
		}
		return nil, fmt.Errorf("start %q (release %s) in %s: %v: %w", p.spec.Application, p.spec.Release, p.spec.Dir, err, errkind.FailedPrecondition)
	}
	r := &running{pid: cmd.Process.Pid, pgid: cmd.Process.Pid, exited: make(chan struct{}), start: time.Now(), health: health}
	go func() {
		r.err = cmd.Wait()
		r.exit()
	}()
	p.mu.Lock()
	p.pid, p.pgid, p.health = r.pid, r.pgid, r.health
	p.mu.Unlock()
	p.sup.writeRecord(role, p.spec, r, ss)
	p.log.Info("app started", "pid", r.pid, "dir", p.spec.Dir, "listen", len(p.spec.Listen))
	return r, nil
}

// exit marks r exited, once r.err is set.
func (r *running) exit() {
	if r.health != "" {
		_ = os.Remove(r.health)
	}
	close(r.exited)
}

// loop watches r, restarts it when it exits on its own, stops it when
// asked, and leaves it running when detached.
func (p *proc) loop(r *running) {
	defer close(p.done)
	app := p.spec.Application
	backoff := p.sup.cfg.RestartBackoff
	last := r
	for {
		if r != nil {
			last = r
			select {
			case <-p.stop:
				p.terminate(r)
				p.sup.removeRecord(roleMain, app, r.pid)
				return
			case <-p.detach:
				return
			case <-r.exited:
			}
			p.mu.Lock()
			p.pid, p.health = 0, ""
			p.mu.Unlock()
			killGroup(r.pgid) // leftovers of the group
			if time.Since(r.start) > p.sup.cfg.MaxRestartBackoff {
				backoff = p.sup.cfg.RestartBackoff
			}
			p.log.Warn("app exited; restarting", "error", fmt.Sprint(r.err), "backoff", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-p.stop:
			t.Stop()
			if last != nil {
				p.sup.removeRecord(roleMain, app, last.pid)
			}
			return
		case <-p.detach:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, p.sup.cfg.MaxRestartBackoff)
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
		r = p.respawn()
	}
}

// respawn starts p's process again on the app's sockets, unless p was
// asked to stop or detach meanwhile (Finish decides under s.mu).
func (p *proc) respawn() *running {
	s := p.sup
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-p.stop:
		return nil
	case <-p.detach:
		return nil
	default:
	}
	ss, err := s.socketsFor(p.spec.Application, p.spec.Listen)
	var r *running
	if err == nil {
		r, err = p.spawn(ss, roleMain)
	}
	if err != nil {
		p.log.Error("app restart failed", "error", err)
		return nil
	}
	return r
}

// terminate sends p's stop signal to r's group (unless Finish did),
// SIGKILL after the grace period, and waits for r to exit.
func (p *proc) terminate(r *running) {
	p.mu.Lock()
	sent := p.signalled == r.pid
	p.mu.Unlock()
	sig := p.spec.StopSignal
	if sent {
		sig = 0
	}
	p.kill(r, sig)
}

// kill sends sig (none when 0) to r's group, SIGKILL after the grace
// period, and waits for r to exit.
func (p *proc) kill(r *running, sig syscall.Signal) {
	if sig != 0 {
		_ = syscall.Kill(-r.pgid, sig)
	}
	t := time.NewTimer(p.spec.StopGrace)
	defer t.Stop()
	select {
	case <-r.exited:
	case <-t.C:
		p.log.Warn("app ignored its stop signal; sending SIGKILL", "grace", p.spec.StopGrace)
		killGroup(r.pgid)
		<-r.exited
	}
	killGroup(r.pgid)
	p.log.Info("app stopped", "pid", r.pid)
}

func killGroup(pgid int) {
	if pgid > 1 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}
