// Package process supervises the agent's application processes: one per
// application, started with `sh -c run.command` in the release directory, in
// its own process group, restarted with backoff when it crashes, stopped with
// SIGTERM to the group and SIGKILL after a grace period.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
	"github.com/cutover-dev/cutover/pkg/logging"
	"github.com/cutover-dev/cutover/pkg/sdnotify"
)

// Defaults used when a Config or Spec field is zero.
const (
	DefaultStopGrace         = 10 * time.Second
	DefaultRestartBackoff    = 500 * time.Millisecond
	DefaultMaxRestartBackoff = 30 * time.Second
)

// Config configures a Supervisor.
type Config struct {
	// Log receives supervision events.
	Log *slog.Logger
	// Env holds the agent's --env values, given to every process.
	Env map[string]string
	// LogDir receives <app>.log with each app's stdout and stderr; empty: the agent's stderr.
	LogDir string
	// RunDir receives <app>.pid with the process group of each running app,
	// so that a restarted agent can stop what a crashed one left running
	// (see StopOrphans); empty: not recorded.
	RunDir string
	// RestartBackoff is the first wait before restarting a crashed process.
	RestartBackoff time.Duration
	// MaxRestartBackoff caps the wait, which doubles on each crash.
	MaxRestartBackoff time.Duration
}

// Spec is what to run for one application.
type Spec struct {
	// Application is the app's name.
	Application string
	// Release is the release id (CUTOVER_RELEASE_ID).
	Release string
	// Dir is the working directory: the release directory itself, not `current`.
	Dir string
	// Command is run with `sh -c`.
	Command string
	// StopGrace is how long a stop waits after SIGTERM before SIGKILL.
	StopGrace time.Duration
}

// Info describes a supervised process.
type Info struct {
	// Release is the release it runs.
	Release string
	// PID is the current process id, 0 while it waits to be restarted.
	PID int
	// Restarts counts the restarts after crashes.
	Restarts int
}

// Supervisor runs at most one process per application.
type Supervisor struct {
	cfg      Config
	mu       sync.Mutex
	procs    map[string]*proc
	stopping map[string]*proc // asked to stop, not gone yet
}

// New returns a Supervisor that runs nothing yet.
func New(cfg Config) *Supervisor {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = DefaultRestartBackoff
	}
	if cfg.MaxRestartBackoff < cfg.RestartBackoff {
		cfg.MaxRestartBackoff = max(DefaultMaxRestartBackoff, cfg.RestartBackoff)
	}
	return &Supervisor{cfg: cfg, procs: map[string]*proc{}, stopping: map[string]*proc{}}
}

// Start starts spec's process. It fails (errkind.FailedPrecondition) if the
// application already runs, or if the process cannot be spawned.
func (s *Supervisor) Start(spec Spec) error {
	if spec.StopGrace <= 0 {
		spec.StopGrace = DefaultStopGrace
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.procs[spec.Application]; ok {
		return fmt.Errorf("application %q already runs; stop it first: %w", spec.Application, errkind.FailedPrecondition)
	}
	if _, ok := s.stopping[spec.Application]; ok {
		return fmt.Errorf("application %q is still stopping; stop it first: %w", spec.Application, errkind.FailedPrecondition)
	}
	p := &proc{sup: s, spec: spec, stop: make(chan struct{}), done: make(chan struct{}),
		log: s.cfg.Log.With(logging.KeyApplication, spec.Application, logging.KeyRelease, spec.Release)}
	r, err := p.spawn()
	if err != nil {
		return err
	}
	s.procs[spec.Application] = p
	go p.loop(r)
	return nil
}

// Stop stops the application's process (SIGTERM to its group, SIGKILL after
// the grace period) and waits until it is gone. Not running is fine. If ctx
// ends first, the stop goes on in the background (StopAll and a later Stop
// or Start of the same app wait for it) and Stop returns ctx's error.
func (s *Supervisor) Stop(ctx context.Context, app string) error {
	s.mu.Lock()
	if p, ok := s.procs[app]; ok {
		delete(s.procs, app)
		s.stopping[app] = p
		close(p.stop)
	}
	p, ok := s.stopping[app]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-p.done:
		s.mu.Lock()
		if s.stopping[app] == p {
			delete(s.stopping, app)
		}
		s.mu.Unlock()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %q: %w", app, ctx.Err())
	}
}

// Restart stops the application's process if it runs, then starts spec's.
func (s *Supervisor) Restart(ctx context.Context, spec Spec) error {
	if err := s.Stop(ctx, spec.Application); err != nil {
		return err
	}
	return s.Start(spec)
}

// StopAll stops every process, in parallel, and waits for them, including
// those whose stop an earlier Stop left running in the background.
func (s *Supervisor) StopAll(ctx context.Context) error {
	s.mu.Lock()
	apps := make([]string, 0, len(s.procs)+len(s.stopping))
	for app := range s.procs {
		apps = append(apps, app)
	}
	for app := range s.stopping {
		if _, ok := s.procs[app]; !ok {
			apps = append(apps, app)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(apps))
	for i, app := range apps {
		wg.Go(func() { errs[i] = s.Stop(ctx, app) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Applications returns the supervised applications, sorted.
func (s *Supervisor) Applications() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	apps := make([]string, 0, len(s.procs))
	for app := range s.procs {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	return apps
}

// Info returns what runs for app; ok is false if nothing is supervised.
func (s *Supervisor) Info(app string) (info Info, ok bool) {
	s.mu.Lock()
	p, ok := s.procs[app]
	s.mu.Unlock()
	if !ok {
		return Info{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return Info{Release: p.spec.Release, PID: p.pid, Restarts: p.restarts}, true
}

// proc is one supervised application.
type proc struct {
	sup  *Supervisor
	spec Spec
	log  *slog.Logger
	stop chan struct{} // closed to ask the loop to stop
	done chan struct{} // closed when the loop has stopped the process

	mu       sync.Mutex
	pid      int
	restarts int
}

// running is one spawned process.
type running struct {
	pid    int
	exited chan struct{}
	err    error // set before exited is closed
	start  time.Time
}

func (p *proc) env() []string {
	env := sdnotify.FilterEnv(os.Environ())
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

func (p *proc) spawn() (*running, error) {
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
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %q (release %s) in %s: %v: %w", p.spec.Application, p.spec.Release, p.spec.Dir, err, errkind.FailedPrecondition)
	}
	r := &running{pid: cmd.Process.Pid, exited: make(chan struct{}), start: time.Now()}
	go func() {
		r.err = cmd.Wait()
		close(r.exited)
	}()
	p.mu.Lock()
	p.pid = r.pid
	p.mu.Unlock()
	p.sup.writePID(p.spec.Application, r.pid)
	p.log.Info("app started", "pid", r.pid, "dir", p.spec.Dir)
	return r, nil
}

// loop watches r, restarts it when it exits on its own, and stops it when asked.
func (p *proc) loop(r *running) {
	defer close(p.done)
	defer p.sup.removePID(p.spec.Application)
	backoff := p.sup.cfg.RestartBackoff
	for {
		if r != nil {
			select {
			case <-p.stop:
				p.terminate(r)
				return
			case <-r.exited:
			}
			p.mu.Lock()
			p.pid = 0
			p.mu.Unlock()
			killGroup(r.pid) // leftovers of the group
			if time.Since(r.start) > p.sup.cfg.MaxRestartBackoff {
				backoff = p.sup.cfg.RestartBackoff
			}
			p.log.Warn("app exited; restarting", "error", fmt.Sprint(r.err), "backoff", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-p.stop:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, p.sup.cfg.MaxRestartBackoff)
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
		var err error
		if r, err = p.spawn(); err != nil {
			p.log.Error("app restart failed", "error", err)
			r = nil
		}
	}
}

// terminate sends SIGTERM to r's group, SIGKILL after the grace period, and
// waits for r to exit.
func (p *proc) terminate(r *running) {
	_ = syscall.Kill(-r.pid, syscall.SIGTERM)
	t := time.NewTimer(p.spec.StopGrace)
	defer t.Stop()
	select {
	case <-r.exited:
	case <-t.C:
		p.log.Warn("app ignored SIGTERM; sending SIGKILL", "grace", p.spec.StopGrace)
		killGroup(r.pid)
		<-r.exited
	}
	killGroup(r.pid)
	p.log.Info("app stopped", "pid", r.pid)
}

func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
