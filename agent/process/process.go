// Package process supervises the agent's application processes: one per
// application, started with `sh -c run.command` in the release directory, in
// its own process group, restarted with backoff when it crashes, stopped with
// its stop signal (SIGTERM) to the group and SIGKILL after a grace period.
//
// For an app with listening sockets (Spec.Listen), the Supervisor owns the
// sockets and hands them to each process by socket activation (listen.go),
// so that a new release can start beside the old one on the same sockets
// (Overlap, handover.go). The processes outlive the agent: Detach leaves
// them running with their records in Config.RunDir, and the next agent's
// Adopt supervises them again (adopt.go).
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/pkg/appspec"
	"github.com/cutover-dev/cutover/pkg/errkind"
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
	// RunDir receives a record (<app>.json) of each running app process,
	// so that a restarted agent can adopt it (see Adopt), and the private
	// health sockets of the apps with Listen; empty: nothing is recorded,
	// and health sockets are made in os.TempDir().
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
	// StopGrace is how long a stop waits after the stop signal before SIGKILL.
	StopGrace time.Duration
	// Listen are the listening sockets the Supervisor opens for the app,
	// keeps open across its releases and restarts, and hands to each of its
	// processes as fds 3… (see listen.go); empty: none.
	Listen []appspec.Listener
	// StopSignal is what stops the process (sent to its group); 0: SIGTERM.
	StopSignal syscall.Signal
}

func (sp Spec) withDefaults() Spec {
	if sp.StopGrace <= 0 {
		sp.StopGrace = DefaultStopGrace
	}
	if sp.StopSignal == 0 {
		sp.StopSignal = syscall.SIGTERM
	}
	return sp
}

// Info describes a supervised process.
type Info struct {
	// Release is the release it runs.
	Release string
	// PID is the current process id, 0 while it waits to be restarted.
	PID int
	// Restarts counts the restarts after crashes.
	Restarts int
	// HealthSocket is the path of the process's private health socket; ""
	// without Listen (or while it waits to be restarted).
	HealthSocket string
	// Adopted says the process was started by an earlier agent and adopted.
	Adopted bool
	// Addrs are the bound addresses of the app's listening sockets, in the
	// order of Spec.Listen (a tcp port 0 resolved).
	Addrs []string
	// SocketsLost says why the listening sockets of an adopted app could not
	// be taken back from it ("" when they were, or without Listen): its next
	// Overlap fails, and a Restart opens them anew.
	SocketsLost string
}

// Supervisor runs at most one supervised process per application (and,
// during an Overlap, the new one beside it).
type Supervisor struct {
	cfg      Config
	mu       sync.Mutex
	procs    map[string]*proc
	stopping map[string][]*proc // asked to stop, maybe not gone yet
	sockets  map[string]*sockets
	overlaps map[string]*Handover // not finished nor aborted
	detached bool
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
	return &Supervisor{cfg: cfg, procs: map[string]*proc{}, stopping: map[string][]*proc{},
		sockets: map[string]*sockets{}, overlaps: map[string]*Handover{}}
}

// Start starts spec's process. If the app runs a process adopted from an
// earlier agent (see Adopt) on spec.Release, Start keeps it and returns
// nil. It fails (errkind.FailedPrecondition) if the application already
// runs, is still stopping, or if the process cannot be spawned.
func (s *Supervisor) Start(spec Spec) error {
	spec = spec.withDefaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.procs[spec.Application]; ok {
		if p.adopted && p.spec.Release == spec.Release {
			return nil
		}
		return fmt.Errorf("application %q already runs; stop it first: %w", spec.Application, errkind.FailedPrecondition)
	}
	if len(s.stoppingLocked(spec.Application)) > 0 {
		return fmt.Errorf("application %q is still stopping; stop it first: %w", spec.Application, errkind.FailedPrecondition)
	}
	_, _, err := s.startLocked(spec)
	return err
}

// startLocked spawns spec's process and supervises it. Call with s.mu held.
func (s *Supervisor) startLocked(spec Spec) (*proc, *running, error) {
	if s.detached {
		return nil, nil, fmt.Errorf("start %q: the supervisor was detached: %w", spec.Application, errkind.FailedPrecondition)
	}
	ss, err := s.socketsFor(spec.Application, spec.Listen)
	if err != nil {
		return nil, nil, err
	}
	p := s.newProc(spec)
	r, err := p.spawn(ss, roleMain)
	if err != nil {
		return nil, nil, err
	}
	s.procs[spec.Application] = p
	go p.loop(r)
	return p, r, nil
}

// Stop stops the application's process (its stop signal to its group,
// SIGKILL after the grace period), and the new one of an Overlap not
// finished, waits until they are gone, and closes the app's listening
// sockets. Not running is fine. If ctx ends first, the stop goes on in
// the background (StopAll and a later Stop or Start of the same app wait
// for it), the sockets stay open, and Stop returns ctx's error.
func (s *Supervisor) Stop(ctx context.Context, app string) error {
	return s.stop(ctx, app, true)
}

func (s *Supervisor) stop(ctx context.Context, app string, closeSockets bool) error {
	s.mu.Lock()
	if h := s.overlaps[app]; h != nil {
		s.dropOverlapLocked(h)
	}
	if p, ok := s.procs[app]; ok {
		delete(s.procs, app)
		s.stopping[app] = append(s.stopping[app], p)
		close(p.stop)
	}
	waiting := slices.Clone(s.stopping[app])
	s.mu.Unlock()
	for _, p := range waiting {
		select {
		case <-p.done:
		case <-ctx.Done():
			return fmt.Errorf("stop %q: %w", app, ctx.Err())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	gone := len(s.stoppingLocked(app)) == 0 && s.procs[app] == nil && s.overlaps[app] == nil
	if closeSockets && gone {
		s.sockets[app].close()
		delete(s.sockets, app)
	}
	return nil
}

// stoppingLocked prunes the stopped processes of app and returns those
// still stopping. Call with s.mu held.
func (s *Supervisor) stoppingLocked(app string) []*proc {
	left := slices.DeleteFunc(s.stopping[app], func(p *proc) bool {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	})
	if len(left) == 0 {
		delete(s.stopping, app)
		return nil
	}
	s.stopping[app] = left
	return left
}

// Restart stops the application's process if it runs, then starts spec's.
// The app's listening sockets stay open in between: connections wait in
// their backlog.
func (s *Supervisor) Restart(ctx context.Context, spec Spec) error {
	if err := s.stop(ctx, spec.Application, false); err != nil {
		return err
	}
	return s.Start(spec)
}

// StopAll stops every process, in parallel, and waits for them, including
// those whose stop an earlier Stop left running in the background.
func (s *Supervisor) StopAll(ctx context.Context) error {
	s.mu.Lock()
	set := map[string]bool{}
	for app := range s.procs {
		set[app] = true
	}
	for app := range s.stopping {
		set[app] = true
	}
	for app := range s.overlaps {
		set[app] = true
	}
	for app := range s.sockets {
		set[app] = true
	}
	s.mu.Unlock()
	apps := slices.Sorted(maps.Keys(set))
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
	return slices.Sorted(maps.Keys(s.procs))
}

// Info returns what runs for app; ok is false if nothing is supervised.
func (s *Supervisor) Info(app string) (info Info, ok bool) {
	s.mu.Lock()
	p, ok := s.procs[app]
	var addrs []string
	var lost string
	if ss := s.sockets[app]; ss != nil {
		addrs = slices.Clone(ss.addrs)
		if ss.lost != nil {
			lost = ss.lost.Error()
		}
	}
	s.mu.Unlock()
	if !ok {
		return Info{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return Info{Release: p.spec.Release, PID: p.pid, Restarts: p.restarts, HealthSocket: p.health,
		Adopted: p.adopted, Addrs: addrs, SocketsLost: lost}, true
}
